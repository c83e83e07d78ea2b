#include <criterion/criterion.h>
#include <string.h>

#include "common/cmdline.h"
#include "common/error.h"

static char **split_ok(const char *line, size_t expect_argc)
{
    char **argv = NULL;
    size_t argc = 0;
    cr_assert_eq(cmdline_split(line, &argv, &argc), 0, "split failed: %s", line);
    cr_assert_eq(argc, expect_argc, "%s: got %zu words", line, argc);
    cr_assert_null(argv[argc]);
    return argv;
}

Test(cmdline, plain_words_and_whitespace)
{
    char **argv = split_ok("  python   -u  agent.py\t--x=1 ", 4);
    cr_assert_str_eq(argv[0], "python");
    cr_assert_str_eq(argv[3], "--x=1");
    cmdline_free(argv);
}

Test(cmdline, list2cmdline_style_double_quotes)
{
    /* What subprocess.list2cmdline produces for an argument with spaces
     * and one with an embedded quote. */
    char **argv = split_ok("a \"--logging-format=%(asctime)s %(message)s\" \"say \\\"hi\\\"\"", 3);
    cr_assert_str_eq(argv[1], "--logging-format=%(asctime)s %(message)s");
    cr_assert_str_eq(argv[2], "say \"hi\"");
    cmdline_free(argv);
}

Test(cmdline, single_quotes_and_escapes)
{
    char **argv = split_ok("'a b' c\\ d \"\"", 3);
    cr_assert_str_eq(argv[0], "a b");
    cr_assert_str_eq(argv[1], "c d");
    cr_assert_str_eq(argv[2], "");
    cmdline_free(argv);
}

Test(cmdline, empty_line_gives_empty_argv)
{
    char **argv = split_ok("   ", 0);
    cmdline_free(argv);
}

Test(cmdline, unterminated_quotes_are_errors)
{
    char **argv = NULL;
    size_t argc = 0;
    cr_assert_eq(cmdline_split("a \"b c", &argv, &argc), CR_EBADMSG);
    cr_assert_eq(cmdline_split("a 'b", &argv, &argc), CR_EBADMSG);
    cr_assert_eq(cmdline_split("a b\\", &argv, &argc), CR_EBADMSG);
}

Test(cmdline, replace_every_placeholder)
{
    char *s = cmdline_replace("--port=P --again=P P", "P", "12345");
    cr_assert_str_eq(s, "--port=12345 --again=12345 12345");
    free(s);
    s = cmdline_replace("nothing here", "RAY_NODE_MANAGER_PORT_PLACEHOLDER", "1");
    cr_assert_str_eq(s, "nothing here");
    free(s);
}
