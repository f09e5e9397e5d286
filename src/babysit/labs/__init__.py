"""The lectures' experiments as labs (`babysit lab NAME`): each redraws its figures and checks
its claims with numbers. Importing the package registers every lab in LABS."""
from babysit.labs import activations, batchnorm, init, makemore, optimizers  # noqa: F401  (each module registers its lab)
from babysit.labs.base import LABS, Claim, LabResult, Table, run_lab  # noqa: F401
