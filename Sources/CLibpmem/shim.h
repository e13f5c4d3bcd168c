#ifndef PMEMTRACK_CLIBPMEM_SHIM_H
#define PMEMTRACK_CLIBPMEM_SHIM_H
#include <libpmem.h>
#endif
