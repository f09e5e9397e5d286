"""What a run, a search or an ensemble shows its user: the HTML report (one self-contained page),
the PNG plots and the TensorBoard export, all drawn from the readers in report/readers.py."""
