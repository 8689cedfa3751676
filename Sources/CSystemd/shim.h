#ifndef LOCKVAULT_CSYSTEMD_SHIM_H
#define LOCKVAULT_CSYSTEMD_SHIM_H
/* Without this, sd-journal.h's macros would stamp CODE_FILE/CODE_LINE of this shim on every
   entry; lockvault adds its own source fields where they help. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#endif
