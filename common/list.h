/* Intrusive circular doubly linked lists, in the manner of libuv's queue.h
 * and the Linux kernel's list.h.
 *
 * A list head is a list_t whose next/prev point at itself when empty; an
 * element embeds a list_t and is recovered with LIST_ENTRY.  Nothing is
 * allocated: the owner of the element owns its memory.  An element that was
 * removed with list_remove() points at itself, so removing it twice is
 * harmless. */
#ifndef CRAYLET_COMMON_LIST_H
#define CRAYLET_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list {
    struct list *next, *prev;
} list_t;

#define LIST_ENTRY(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Safe against removal of the current element (not of the next one). */
#define LIST_FOREACH_SAFE(pos, tmp, head) \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)
#define LIST_FOREACH(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Declares `var` (a `type *`) and walks the entries of `head` linked
 * through `member`.  The current entry must not be removed. */
#define LIST_FOREACH_ENTRY(type, var, head, member)                                          \
    for (type *var = LIST_ENTRY((head)->next, type, member); &var->member != (head);          \
         var = LIST_ENTRY(var->member.next, type, member))
/* Backwards. */
#define LIST_FOREACH_ENTRY_REVERSE(type, var, head, member)                                  \
    for (type *var = LIST_ENTRY((head)->prev, type, member); &var->member != (head);          \
         var = LIST_ENTRY(var->member.prev, type, member))

static inline void list_init(list_t *l) { l->next = l->prev = l; }
static inline bool list_empty(const list_t *head) { return head->next == head; }

static inline void list_insert_tail(list_t *head, list_t *e)
{
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
}

static inline void list_insert_head(list_t *head, list_t *e)
{
    e->next = head->next;
    e->prev = head;
    head->next->prev = e;
    head->next = e;
}

static inline void list_remove(list_t *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->next = e->prev = e;
}

/* Move every element of `from` to the tail of `to`, in order; `from` is
 * left empty. */
static inline void list_move_all(list_t *to, list_t *from)
{
    while (!list_empty(from)) {
        list_t *e = from->next;
        list_remove(e);
        list_insert_tail(to, e);
    }
}

#endif
