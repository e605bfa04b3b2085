import PVM
