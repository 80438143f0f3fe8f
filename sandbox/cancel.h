/*
 * cancel: tie a run's sandbox_cancel token to the kube_cancel flags of the
 * blocking calls it makes (watch, REST, exec), so a cancel from another
 * thread stops whichever call is in progress. Internal to sandbox/.
 */
#ifndef SANDBOX_CANCEL_H
#define SANDBOX_CANCEL_H

#include "kube/client.h"
#include "sandbox/run.h"

/* Set k whenever c is cancelled (at once if it already is), until
 * unlinked. At most SANDBOX_CANCEL_LINKS at a time; c may be NULL (then
 * nothing happens). 0 or ERR_FAIL when the table is full. */
#define SANDBOX_CANCEL_LINKS 8
int sandbox_cancel_link(sandbox_cancel *c, kube_cancel *k);
void sandbox_cancel_unlink(sandbox_cancel *c, kube_cancel *k);

#endif
