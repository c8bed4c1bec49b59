/*
 * diff.h: what changed between two versions of a record, for webhook
 * events' previous_attributes (and the lead's history): which attributes
 * differ, and their values rendered as the API renders them.
 *
 * Attributes are named by their enum lead_field / follow_field bits and
 * taken in the model's order. A follow's status is compared and rendered
 * as it reads at a given time (a pending follow past its due date reads
 * "overdue"), as follow_encode does; updated_at never counts as a change.
 */
#ifndef CRMD_MODEL_DIFF_H
#define CRMD_MODEL_DIFF_H

#include <stdint.h>

#include "model/jsonw.h"
#include "model/record.h"

/* The bits of the attributes whose values differ between a and b. */
unsigned lead_changed_fields(const lead_t *a, const lead_t *b);
unsigned follow_changed_fields(const follow_t *a, const follow_t *b, int64_t now);

/* Writes {"name": value, ...}: the attributes of fields with their values
 * in l (f), as lead_encode (follow_encode at now) renders them. */
void lead_encode_fields(jw_t *w, const lead_t *l, unsigned fields);
void follow_encode_fields(jw_t *w, const follow_t *f, unsigned fields, int64_t now);

#endif
