#include "common/cmdline.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

int cmdline_split(const char *line, char ***argv_out, size_t *argc_out)
{
    size_t len = strlen(line);
    char **argv = NULL;
    size_t argc = 0, cap = 0;
    /* A word is never longer than the line. */
    char *word = xrealloc(NULL, len + 1);
    size_t i = 0;
    int rc = 0;

    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n'))
            i++;
        if (i >= len)
            break;
        size_t w = 0;
        while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\n') {
            char c = line[i];
            if (c == '\\') {
                if (i + 1 >= len) {
                    rc = CR_EBADMSG;
                    goto out;
                }
                word[w++] = line[i + 1];
                i += 2;
            } else if (c == '\'') {
                const char *end = memchr(line + i + 1, '\'', len - i - 1);
                if (!end) {
                    rc = CR_EBADMSG;
                    goto out;
                }
                size_t n = (size_t)(end - (line + i + 1));
                memcpy(word + w, line + i + 1, n);
                w += n;
                i += n + 2;
            } else if (c == '"') {
                i++;
                bool closed = false;
                while (i < len) {
                    if (line[i] == '"') {
                        closed = true;
                        i++;
                        break;
                    }
                    if (line[i] == '\\' && i + 1 < len && (line[i + 1] == '"' || line[i + 1] == '\\')) {
                        word[w++] = line[i + 1];
                        i += 2;
                    } else {
                        word[w++] = line[i++];
                    }
                }
                if (!closed) {
                    rc = CR_EBADMSG;
                    goto out;
                }
            } else {
                word[w++] = c;
                i++;
            }
        }
        if (argc + 2 > cap) {
            cap = cap ? cap * 2 : 8;
            argv = xrealloc(argv, cap * sizeof *argv);
        }
        argv[argc] = xrealloc(NULL, w + 1);
        memcpy(argv[argc], word, w);
        argv[argc][w] = '\0';
        argc++;
    }
    if (!argv)
        argv = xrealloc(NULL, sizeof *argv);
    argv[argc] = NULL;
out:
    free(word);
    if (rc != 0) {
        if (argv) {
            argv[argc] = NULL;
            cmdline_free(argv);
        }
        return rc;
    }
    *argv_out = argv;
    *argc_out = argc;
    return 0;
}

void cmdline_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

char *cmdline_replace(const char *s, const char *needle, const char *with)
{
    size_t nlen = strlen(needle), wlen = strlen(with), count = 0;
    if (nlen == 0)
        return strdup(s);
    for (const char *p = strstr(s, needle); p; p = strstr(p + nlen, needle))
        count++;
    size_t out_len = strlen(s) + count * wlen - count * nlen;
    char *out = xrealloc(NULL, out_len + 1);
    char *o = out;
    const char *p = s;
    for (const char *hit = strstr(p, needle); hit; hit = strstr(p, needle)) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, with, wlen);
        o += wlen;
        p = hit + nlen;
    }
    strcpy(o, p);
    return out;
}
