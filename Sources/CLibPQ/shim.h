#ifndef LOCKVAULT_CLIBPQ_SHIM_H
#define LOCKVAULT_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
