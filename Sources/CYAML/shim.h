#ifndef SHOAL_CYAML_SHIM_H
#define SHOAL_CYAML_SHIM_H
#include <yaml.h>
#endif
