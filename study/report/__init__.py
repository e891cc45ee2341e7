"""A study's report, one model for every place that shows it.

- `data.read_study` reads a study once, in one transaction (`StudyData`);
- `model.study_report` turns it, for a subgroup of its answers, into a plain `StudyReport`
  (the study, the tables of `study.reports`, the notices);
- `sections.SECTIONS` declares once, in order, what the report shows (tables, figures,
  paragraphs, each section's note when it has nothing to show), as `blocks`;
- the Results page shows those sections as tabs, and `html.report_html` renders the same
  sections from a Jinja2 template into one standalone file.
"""
