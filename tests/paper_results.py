"""The seed study's published results, shared by the statistics and the report tests."""

# Table 4.3 of Saeed et al. (design.md): (task, data, subset) -> (correct, read, as printed).
TABLE_4_3 = {
    ("identification of synthesised images", "ADC", "overall"): (18, 32, "0.563"),
    ("identification of synthesised images", "ADC", "with cancer"): (10, 16, "0.625"),
    ("identification of synthesised images", "ADC", "without cancer"): (8, 16, "0.500"),
    ("identification of synthesised images", "T2W", "overall"): (20, 32, "0.625"),
    ("identification of synthesised images", "T2W", "with cancer"): (11, 16, "0.688"),
    ("identification of synthesised images", "T2W", "without cancer"): (9, 16, "0.563"),
    ("lesion identification", "ADC", "overall"): (22, 32, "0.688"),
    ("lesion identification", "ADC", "real"): (10, 16, "0.625"),
    ("lesion identification", "ADC", "synthesised"): (12, 16, "0.750"),
    ("lesion identification", "T2W", "overall"): (19, 32, "0.594"),
    ("lesion identification", "T2W", "real"): (10, 16, "0.625"),
    ("lesion identification", "T2W", "synthesised"): (9, 16, "0.563"),
    ("lesion identification, paired", "T2W-DW", "overall"): (18, 32, "0.563"),
    ("lesion identification, paired", "T2W-DW", "real"): (9, 16, "0.563"),
    ("lesion identification, paired", "T2W-DW", "synthesised"): (9, 16, "0.563"),
}
