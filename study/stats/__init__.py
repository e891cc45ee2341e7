"""Statistics of reader studies: pure functions of answers, no database and no user interface.

One concept per module:

- `proportions`: Wilson and Clopper-Pearson intervals, the exact binomial test, Newcombe's
  interval for a difference of independent proportions, exact sample size and interval width.
- `classification`: confusion counts, accuracy / sensitivity / specificity / PPV / NPV with
  intervals, signal-detection d' and criterion c.
- `agreement`: Cohen's kappa (scikit-learn's) per reader pair, Fleiss' kappa, percent
  agreement, intra-reader agreement on repeated cases.
- `likert`: realism ratings per origin, Mann-Whitney U (scipy's), mean with a seeded bootstrap
  interval.
- `roc`: ordinal score from a real/synthetic call and its confidence, empirical AUC, DeLong
  variance, ROC curve points.
- `mrmc`: Obuchowski-Rockette multi-reader multi-case analysis with jackknife covariances.
- `crossing`: the fully crossed block of readers and cases of an incomplete design.
- `equivalence`: TOST of accuracy against 0.5 +- a margin, per reader and for their mean.
- `calibration`: Brier score, expected calibration error and reliability of confidence.
- `hype`: HYPE (Zhou et al. 2019): perceptual thresholds from adaptive staircases, HYPE-time,
  error rates untimed (HYPE-infinity) and at fixed exposures, with seeded bootstrap intervals.
- `froc`, `froc_foms`, `froc_analysis`: FROC marks and truth, RJafroc's FROC figures of merit
  (wAFROC, AFROC, HrAuc, ...) with their jackknife values, and their OR analysis.
- `sizing`, `sizing_pilot`: readers and cases for a target power from a pilot's OR variance
  components (Hillis et al. 2011, as RJafroc), and the pilot (AUC or accuracy) itself.
- `tables`: metrics tables from the tidy answer frame, including the seed study's Table 4.3.
"""

from __future__ import annotations

# The one import of `study` outside this package: the base of every error shown to a user.
from study.imaging.errors import VTTError

# The figures of merit of the MRMC analysis (here, light, for the command line's options).
MRMC_METRICS: tuple[str, ...] = ("auc", "sensitivity", "specificity")
# The figures of merit a pilot is sized by (`sizing_pilot`), here for the same reason.
SIZING_METRICS: tuple[str, ...] = ("accuracy", "auc")
# The FROC figures of merit (`froc_foms`), here for the same reason.
FROC_FOMS: tuple[str, ...] = (
    "wAFROC",
    "AFROC",
    "wAFROC1",
    "AFROC1",
    "HrAuc",
    "MaxLLF",
    "MaxNLF",
    "MaxNLFAllCases",
    "HrSe",
    "HrSp",
)


class StatsError(VTTError):
    """Data that cannot be analysed as asked; the message says what is wrong and where."""
