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
