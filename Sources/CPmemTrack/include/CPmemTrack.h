// PmemTrack's async-signal-safe core: the dirty index, block locks, the
// region registry and the SIGSEGV handler. Everything else is Swift.
#ifndef CPMEMTRACK_H
#define CPMEMTRACK_H

#include "pmt_index.h"
#include "pmt_lock.h"
#include "pmt_region.h"
#include "pmt_probe.h"
#include "pmt_uffd.h"

#endif
