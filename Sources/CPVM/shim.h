#ifndef SHOAL_CPVM_SHIM_H
#define SHOAL_CPVM_SHIM_H

// <stdio.h> first: pvm3.h declares pvm_catchout(FILE *) only when EOF is defined.
#include <stdio.h>
#include <pvm3.h>

#endif
