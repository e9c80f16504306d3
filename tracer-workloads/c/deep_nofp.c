/* deep_nofp — see deep.h; built -O2 without frame pointers. */
#define DEEP_PROG "deep_nofp"
#include "deep.h"
