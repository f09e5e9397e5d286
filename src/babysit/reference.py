"""The lectures' numbers that more than one room judges by (the checklist, the doctor, the lr
range test, the search's pruner, the plots), kept once so that they cannot drift apart."""

# LECTURES.md §2 item 8: "if the cost ever exceeds 3 x the original cost, break out early".
DIVERGE_FACTOR = 3.0
# §2 item 10: an update:data ratio of about 1e-3 is good (log10 -3; -1 is far too large).
TARGET_UPDATE_LOG10 = -3.0
# §2 item 3: far below ln(C) before any training (under half of it): the labels leak into the
# inputs, or the loss is not the softmax cross-entropy.
INIT_LOSS_LOW = 0.5
# §2 item 1 / §1 preprocessing: inputs count as zero-centred when |mean| < 0.5 std per feature on
# average.
CENTRED = 0.5
# §5, the MM3 loss log: (train, val) after 200,000 steps for the preset of each row.
MM3_LOSS_LOG = {
    "makemore-original": (2.1245, 2.1682),
    "makemore-fix-softmax": (2.07, 2.13),
    "makemore-fix-tanh": (2.0356, 2.1027),
    "makemore-kaiming": (2.0377, 2.1070),
    "makemore-bn": (2.0668, 2.1048),
}
MM3_STEPS = 200_000  # §5: 200,000 SGD steps, lr 0.1 then 0.01 after half of them
# A reproduction's val loss within this of the reference counts as reproducing the row (the bar the
# reproduction was held to: benchmarks/reproduce_makemore.py, tests/test_reproduce.py).
MM3_TOLERANCE = 0.03
