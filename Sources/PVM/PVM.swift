import CPVM
