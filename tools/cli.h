/*
 * cli.h — shared pieces of the `steer` command-line tool: the command table,
 * option parsing, error reporting, and helpers that every command uses
 * (model loading, prompts, layer/site lists, steering vector files).
 *
 * Exit statuses: 0 success, 1 a failure while running (library error, bad
 * file, value that does not fit the model), 2 a usage error (unknown option,
 * missing or malformed argument).
 */
#ifndef STEER_CLI_H
#define STEER_CLI_H

#include "steer_exp.h"

#include <stdio.h>

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- commands */

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
} cli_command;

int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_make_random(int argc, char **argv);
int cmd_tensors(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_train(int argc, char **argv); /* cmd_train.c */
int cmd_eval(int argc, char **argv);  /* cmd_eval.c */
int cmd_merge_lora(int argc, char **argv); /* cmd_merge_lora.c */

/* ---------------------------------------------------------------- errors */

/* Name of the running command (for messages) and the whole command line
 * (recorded in output metadata). Set by main. */
extern const char *cli_cmd;
extern const char *cli_cmdline;

/* Prints "steer <cmd>: <message>" as one line on stderr and returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same with steer_last_error() as the message. */
int cli_lib_error(void);
/* Same with "<prefix>: steer_last_error()". */
int cli_lib_error_at(const char *prefix);
/* A usage error: one line "steer <cmd>: <message> (see 'steer <cmd> --help')",
 * returns 2. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- options */

typedef enum {
    OPT_FLAG,  /* int, set to 1                                             */
    OPT_STR,   /* const char *                                              */
    OPT_INT,   /* int                                                       */
    OPT_FLOAT, /* float (finite)                                            */
    OPT_U64,   /* uint64_t                                                  */
    OPT_LIST,  /* cli_strlist: repeatable                                   */
} cli_opt_kind;

#define CLI_LIST_MAX 64
typedef struct {
    const char *items[CLI_LIST_MAX];
    int n;
} cli_strlist;

/* An option spelling kept for old command lines, not shown by --help:
 * CLI_ALIAS("--output", OPT_STR, &out) next to {"-o", "--out", ...}. */
#define CLI_ALIAS(long_name, kind, dest) {NULL, long_name, kind, dest, NULL, NULL}

typedef struct {
    const char *short_name; /* "-m" or NULL                                 */
    const char *long_name;  /* "--model"                                    */
    cli_opt_kind kind;
    void *dest;
    const char *metavar; /* "MODEL" (NULL for flags)                        */
    const char *help;    /* one line; NULL: an alias, not listed by --help */
} cli_opt;

typedef struct {
    const char *usage;       /* "steer info MODEL"                          */
    const char *description; /* a paragraph, may hold newlines              */
    const cli_opt *opts;
    int n_opts;
    const char *example;     /* one or more lines                           */
    int min_pos, max_pos;    /* positional arguments allowed                */
    const char **pos;        /* [max_pos] receives them                     */
} cli_spec;

/* Parses argv[1..argc) (argv[0] is the command name). Returns -1 to go on, or
 * an exit status to return at once: 0 after printing --help, 2 after a usage
 * error (already printed). */
int cli_parse(const cli_spec *spec, int argc, char **argv, int *n_pos);
void cli_print_help(const cli_spec *spec);

/* ---------------------------------------------------------------- lists */

/* "all" | "3" | "0,2,5-7" | "-1" | "2--1" into mask[n_layer] (1 = chosen;
 * a negative number counts from the end: -1 = layer n_layer - 1). On failure writes
 * a message ("layer 9 out of range (model has 5 layers)") into err and
 * returns -1. */
int cli_parse_layers(const char *spec, int n_layer, unsigned char *mask, char *err, size_t err_size);

/* "resid_post,attn_out" | "all" into sites[] (order kept, duplicates
 * dropped). On failure writes "unknown site 'foo' (sites: …)" into err. */
/* A subcommand of a command with subcommands (steer data …, steer vec …). */
typedef struct {
    const char *name, *cmd; /* "scale", "vec scale" (the latter for messages) */
    int (*fn)(int argc, char **argv);
    const char *summary;
} cli_sub;

/* Runs the subcommand named by argv[1] (argv[0] is the command); with no
 * argument or -h/--help/help prints overview to stdout and returns 0; an
 * unknown name is a usage error listing the names. */
int cli_dispatch(const cli_sub *subs, size_t n, void (*overview)(FILE *f), int argc, char **argv);

/* Prints "  name  summary" for each subcommand. */
void cli_list_subs(FILE *f, const cli_sub *subs, size_t n);

int cli_parse_sites(const char *spec, steer_site *sites, int *n_sites, char *err, size_t err_size);
/* "unknown site 'foo' (sites: resid_pre, …)" */
void cli_unknown_site_msg(const char *name, char *err, size_t err_size);

/* ---------------------------------------------------------------- model, prompts */

/* Loads a model (tokenizer may be NULL); prints the error and returns 1. */
int cli_load_model(const char *path, const char *tokenizer_path, steer_model **out);
/* A context for one sequence; prints the error and returns 1. */
int cli_new_ctx(steer_model *m, int n_ctx, int n_threads, steer_ctx **out);

/* Tokens from either text (tokenized with BOS; with chat != 0 wrapped as one
 * user turn in the model's chat format and tokenized with its special tokens)
 * or an id list "1 403 407" (commas also accepted; ids checked against the
 * vocabulary). Exactly one of text and ids must be non-NULL. *out is malloc'd.
 * Prints errors; returns 0, 1 (bad input) or 2 (usage). */
int cli_prompt_tokens(const steer_model *m, const char *text, const char *ids, int chat, int **out, int *n);
/* Fails (1) with "prompt is N tokens but the context holds C positions" when
 * n > n_ctx. */
int cli_check_context(int n, int n_ctx);

/* Adds the steering options to c, in this order at every (site, layer):
 *   1. one STEER_ABLATE per --ablate vector, in command-line order;
 *   2. one STEER_ADD of Σ αᵢ·vᵢ over the --steer files (α from FILE:…:ALPHA)
 *      and then the --control-vector files (α = SCALE), summed in float in
 *      command-line order (control vectors only inside range "A B", or NULL);
 *   3. one STEER_ADD of the summed per-position ([T, d]) --steer vectors.
 * Each argument may end in a position selector @SEL (cli_steer.c,
 * docs/VECTORS.md §6); steps 2 and 3 then run once per distinct selector.
 * Any list may be empty. Returns 0, 1 (error printed) or 2 (usage). */
int cli_add_steering(steer_ctx *c, const steer_model *m, const cli_strlist *steers, const cli_strlist *cvs,
                     const char *range, const cli_strlist *ablates);

/* ---------------------------------------------------------------- misc */

double cli_now(void); /* monotonic seconds */

/* "0,0.1,-2.5" into out[0..max): *n values. On failure writes a one-line
 * message naming opt into err and returns -1 (empty, non-numeric or
 * non-finite values, more than max). */
int cli_parse_floats(const char *opt, const char *s, float *out, int max, int *n, char *err, size_t err_size);
/* A file's label: its name without directory, trailing '/' and extension
 * (models/x/y.bin -> y); the label of labels[i] made unique against
 * labels[0..i) with "#2", "#3", ... (labels are [128] each). */
void cli_file_label(const char *path, char *out, size_t n);
void cli_unique_label(char (*labels)[128], int i);
/* A fatal signal's end: removes the library's temporaries, then dies of sig
 * (so the exit status says what happened). For signal handlers. */
void cli_die_of_signal(int sig);
/* "steer" followed by argv[0..argc), shell-quoted where needed (malloc'd). */
char *cli_join_args(int argc, char **argv);

#endif /* STEER_CLI_H */
