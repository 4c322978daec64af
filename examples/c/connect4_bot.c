/*
 * connect4_bot.c: a Connect Four bot that plays against itself and pushes
 * every move into a diskq queue through the C struct API
 * (dq_producer_push_transition), so it needs no JSON library.
 *
 * Build it against the shared library, from the repository root:
 *
 *   cargo build --release
 *   cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude \
 *      examples/c/connect4_bot.c -o target/release/connect4_bot_c \
 *      -Ltarget/release -ldiskq -Wl,-rpath,"$PWD/target/release"
 *
 * Run it on an existing queue directory:
 *
 *   mkdir -p /tmp/c4q
 *   target/release/connect4_bot_c /tmp/c4q --games 100 --seed 7
 *   target/release/connect4_bot_c /tmp/c4q --self-check
 *
 * `cargo run --release --example selfplay` builds this bot, runs it next
 * to the Rust bot (examples/connect4_bot.rs) and checks the dataset.
 *
 * The game: 7 columns by 6 rows, stones fall to the lowest free cell,
 * four in a row horizontally, vertically or diagonally wins, a full board
 * is a draw. Both players live in this process and alternate moves; pA
 * starts the even games, pB the odd ones. Each move follows a fixed
 * policy: win now if possible, else block the opponent's immediate win,
 * else play a random legal column. The random choice comes from a
 * splitmix64 generator seeded from --seed; the Rust bot uses the same
 * generator and policy, so both play the same games for the same seed.
 *
 * Each move becomes one transition:
 *   obs      42 floats, obs[row * 7 + col] with row 0 at the bottom:
 *            +1 the acting player's stone, -1 the opponent's, 0 empty
 *   mask     7 bytes, 1 where the column has room
 *   action   the column played, 0 to 6
 *   reward   0, except on each player's last move of the game:
 *            +1 win, -1 loss, 0 draw
 *   done     1 on each player's last move of the game
 *   gameId   "c-<pid>-<game>", playerId "pA" or "pB"
 *   seq      index of the move among the player's moves in the game
 * A player's move is pushed when that player moves again, or when the
 * game ends and its reward is known, so each player's transitions reach
 * the queue in seq order.
 *
 * On success the bot prints {"bot":"c","games":N,"transitions":M} on
 * stdout. Every failing dq_ call is reported on stderr with its status
 * and dq_last_error_message(), and the exit status is non-zero.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diskq.h"

#define ROWS 6
#define COLS 7
#define CELLS (ROWS * COLS)

static const char *const PLAYER_IDS[2] = {"pA", "pB"};

/* splitmix64: small, fast and identical in the Rust bot. */
typedef struct rng {
    uint64_t state;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z;

    r->state += UINT64_C(0x9E3779B97F4A7C15);
    z = r->state;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* cell[row][col] is 0 (empty), 1 (pA's stone) or 2 (pB's stone). */
typedef struct board {
    uint8_t cell[ROWS][COLS];
    int height[COLS];
    int stones;
} board;

static void board_reset(board *b)
{
    memset(b, 0, sizeof *b);
}

static int board_legal(const board *b, int col)
{
    return b->height[col] < ROWS;
}

static int board_full(const board *b)
{
    return b->stones == CELLS;
}

static int stone_at(const board *b, int row, int col)
{
    if (row < 0 || row >= ROWS || col < 0 || col >= COLS)
        return 0;
    return b->cell[row][col];
}

/* Returns 1 if the stone at (row, col) is part of four in a row. */
static int board_wins_at(const board *b, int row, int col)
{
    static const int DIRS[4][2] = {{0, 1}, {1, 0}, {1, 1}, {1, -1}};
    int stone = b->cell[row][col];
    int d;

    for (d = 0; d < 4; d++) {
        int dr = DIRS[d][0];
        int dc = DIRS[d][1];
        int run = 1;
        int k;

        for (k = 1; stone_at(b, row + k * dr, col + k * dc) == stone; k++)
            run++;
        for (k = 1; stone_at(b, row - k * dr, col - k * dc) == stone; k++)
            run++;
        if (run >= 4)
            return 1;
    }
    return 0;
}

/* Drops `stone` into legal column `col` and returns the row it landed on. */
static int board_drop(board *b, int col, int stone)
{
    int row = b->height[col];

    b->cell[row][col] = (uint8_t)stone;
    b->height[col]++;
    b->stones++;
    return row;
}

static void board_undo(board *b, int col)
{
    b->height[col]--;
    b->cell[b->height[col]][col] = 0;
    b->stones--;
}

static int board_would_win(board *b, int col, int stone)
{
    int row;
    int wins;

    if (!board_legal(b, col))
        return 0;
    row = board_drop(b, col, stone);
    wins = board_wins_at(b, row, col);
    board_undo(b, col);
    return wins;
}

/* Win now, else block the opponent's immediate win, else random. */
static int choose_move(board *b, int stone, rng *r)
{
    int opponent = 3 - stone;
    int legal[COLS];
    int count = 0;
    int col;

    for (col = 0; col < COLS; col++)
        if (board_would_win(b, col, stone))
            return col;
    for (col = 0; col < COLS; col++)
        if (board_would_win(b, col, opponent))
            return col;
    for (col = 0; col < COLS; col++)
        if (board_legal(b, col))
            legal[count++] = col;
    return legal[rng_next(r) % (uint64_t)count];
}

/* One player's move, held until its reward is known. */
typedef struct pending_move {
    int live;
    float obs[CELLS];
    uint8_t mask[COLS];
    int64_t action;
    uint64_t seq;
} pending_move;

static void record_move(pending_move *m, const board *b, int stone, int col,
                        uint64_t seq)
{
    int row;
    int c;

    for (row = 0; row < ROWS; row++) {
        for (c = 0; c < COLS; c++) {
            int cell = b->cell[row][c];
            float value = 0.0f;

            if (cell == stone)
                value = 1.0f;
            else if (cell != 0)
                value = -1.0f;
            m->obs[row * COLS + c] = value;
        }
    }
    for (c = 0; c < COLS; c++)
        m->mask[c] = (uint8_t)board_legal(b, c);
    m->action = col;
    m->seq = seq;
    m->live = 1;
}

/* Prints what failed, with the status name and diskq's message. */
static void report_failure(const char *what, dq_status status)
{
    char message[512];

    /* The message stays valid only until the next dq_ call, and
     * dq_status_str is one, so copy it first. */
    snprintf(message, sizeof message, "%s", dq_last_error_message());
    fprintf(stderr, "connect4_bot: %s failed: %s: %s\n", what,
            dq_status_str(status), message);
}

static int push_move(dq_producer *producer, const pending_move *m,
                     const char *game_id, int player, double reward,
                     int done)
{
    dq_transition t;
    dq_status status;

    t.obs = m->obs;
    t.obs_len = CELLS;
    t.mask = m->mask;
    t.mask_len = COLS;
    t.action = m->action;
    t.reward = reward;
    t.done = (uint8_t)done;
    t.game_id = game_id;
    t.player_id = PLAYER_IDS[player];
    t.seq = m->seq;

    status = dq_producer_push_transition(producer, &t);
    if (status != DQ_STATUS_OK) {
        report_failure("dq_producer_push_transition", status);
        return -1;
    }
    return 0;
}

/* Plays game number `game` and adds the transitions it pushed to
 * `*pushed`. Returns 0 on success, -1 after reporting a failure. */
static int play_game(dq_producer *producer, rng *r, uint64_t game,
                     uint64_t *pushed)
{
    char game_id[64];
    board b;
    pending_move moves[2];
    uint64_t seq[2] = {0, 0};
    double reward[2] = {0.0, 0.0};
    int mover = (int)(game % 2);
    int player;

    snprintf(game_id, sizeof game_id, "c-%ld-%" PRIu64, (long)getpid(),
             game);
    board_reset(&b);
    moves[0].live = 0;
    moves[1].live = 0;

    for (;;) {
        int stone = mover + 1;
        int col = choose_move(&b, stone, r);
        int row;

        /* The mover's previous move is final now: the game went on. */
        if (moves[mover].live) {
            if (push_move(producer, &moves[mover], game_id, mover, 0.0, 0))
                return -1;
            (*pushed)++;
        }
        record_move(&moves[mover], &b, stone, col, seq[mover]++);

        row = board_drop(&b, col, stone);
        if (board_wins_at(&b, row, col)) {
            reward[mover] = 1.0;
            reward[1 - mover] = -1.0;
            break;
        }
        if (board_full(&b))
            break;
        mover = 1 - mover;
    }

    for (player = 0; player < 2; player++) {
        if (!moves[player].live)
            continue;
        if (push_move(producer, &moves[player], game_id, player,
                      reward[player], 1))
            return -1;
        (*pushed)++;
    }
    return 0;
}

/* Checks that diskq rejects `got` with status `want` and a message that
 * contains `needle`. Returns 0 if it did. */
static int expect_rejected(const char *what, dq_status got, dq_status want,
                           const char *needle)
{
    char message[512];
    int ok;

    snprintf(message, sizeof message, "%s", dq_last_error_message());
    ok = got == want && strstr(message, needle) != NULL;
    printf("self-check %s: %s: expected %s, got %s: %s\n",
           ok ? "ok" : "FAILED", what, dq_status_str(want),
           dq_status_str(got), got == DQ_STATUS_OK ? "(accepted)" : message);
    return ok ? 0 : -1;
}

/* Pushes invalid input and checks that each push is rejected with the
 * right status and a message naming the problem. */
static int self_check(dq_producer *producer)
{
    static const char NAN_JSON[] = "{\"reward\":NaN}";
    static const char ARRAY_JSON[] = "[1,2]";
    pending_move m;
    board b;
    dq_transition t;
    int failures = 0;

    failures -= expect_rejected(
        "dq_producer_push {\"reward\":NaN}",
        dq_producer_push(producer, (const uint8_t *)NAN_JSON,
                         strlen(NAN_JSON)),
        DQ_STATUS_NON_FINITE, "reward");
    failures -= expect_rejected(
        "dq_producer_push [1,2]",
        dq_producer_push(producer, (const uint8_t *)ARRAY_JSON,
                         strlen(ARRAY_JSON)),
        DQ_STATUS_INVALID_JSON, "object");

    board_reset(&b);
    record_move(&m, &b, 1, 3, 0);
    t.obs = m.obs;
    t.obs_len = CELLS;
    t.mask = m.mask;
    t.mask_len = COLS;
    t.action = m.action;
    t.reward = 0.0;
    t.done = 0;
    t.game_id = "c-self-check";
    t.player_id = PLAYER_IDS[0];
    t.seq = 0;

    m.obs[3] = NAN;
    failures -= expect_rejected(
        "dq_producer_push_transition obs[3]=NaN",
        dq_producer_push_transition(producer, &t), DQ_STATUS_NON_FINITE,
        "obs[3]");
    m.obs[3] = 0.0f;
    m.mask[5] = 2;
    failures -= expect_rejected(
        "dq_producer_push_transition mask[5]=2",
        dq_producer_push_transition(producer, &t), DQ_STATUS_INVALID_FIELD,
        "mask[5]");
    return failures == 0 ? 0 : -1;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: connect4_bot QUEUE_DIR [--games N] [--seed S] "
            "[--self-check]\n"
            "  QUEUE_DIR     existing queue directory to push into\n"
            "  --games N     number of games to play (default 100)\n"
            "  --seed S      seed of the random moves (default 1)\n"
            "  --self-check  push invalid input, check that diskq rejects "
            "it, exit\n");
}

/* Parses a decimal unsigned 64-bit integer; strtoull alone accepts a
 * sign, leading spaces and trailing text. Returns 0 on success. */
static int parse_u64(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long value;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)value;
    return 0;
}

typedef struct options {
    const char *queue_dir;
    uint64_t games;
    uint64_t seed;
    int self_check;
} options;

/* Returns 0 to run, 1 after --help, -1 on a usage error. */
static int parse_args(int argc, char **argv, options *opts)
{
    int i;

    opts->queue_dir = NULL;
    opts->games = 100;
    opts->seed = 1;
    opts->self_check = 0;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        uint64_t *target = NULL;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(stdout);
            return 1;
        } else if (strcmp(arg, "--self-check") == 0) {
            opts->self_check = 1;
            continue;
        } else if (strcmp(arg, "--games") == 0) {
            target = &opts->games;
        } else if (strcmp(arg, "--seed") == 0) {
            target = &opts->seed;
        } else if (arg[0] == '-') {
            fprintf(stderr, "connect4_bot: unknown option %s\n", arg);
            return -1;
        } else if (opts->queue_dir == NULL) {
            opts->queue_dir = arg;
            continue;
        } else {
            fprintf(stderr, "connect4_bot: unexpected argument %s\n", arg);
            return -1;
        }

        if (i + 1 >= argc) {
            fprintf(stderr, "connect4_bot: %s requires a value\n", arg);
            return -1;
        }
        i++;
        if (parse_u64(argv[i], target) != 0) {
            fprintf(stderr,
                    "connect4_bot: invalid value %s for %s, expected an "
                    "unsigned integer\n",
                    argv[i], arg);
            return -1;
        }
    }
    if (opts->queue_dir == NULL) {
        fprintf(stderr, "connect4_bot: missing QUEUE_DIR\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options opts;
    dq_producer_options producer_opts;
    dq_producer *producer = NULL;
    dq_status status;
    rng r;
    uint64_t game;
    uint64_t pushed = 0;
    int failed = 0;
    int parsed;

    parsed = parse_args(argc, argv, &opts);
    if (parsed != 0) {
        if (parsed < 0)
            print_usage(stderr);
        return parsed < 0 ? 2 : 0;
    }

    status = dq_producer_options_default(&producer_opts, sizeof producer_opts);
    if (status != DQ_STATUS_OK) {
        report_failure("dq_producer_options_default", status);
        return 1;
    }
    status = dq_producer_open(opts.queue_dir, &producer_opts, &producer);
    if (status != DQ_STATUS_OK) {
        report_failure("dq_producer_open", status);
        return 1;
    }

    if (opts.self_check) {
        failed = self_check(producer) != 0;
    } else {
        r.state = opts.seed;
        for (game = 0; game < opts.games && !failed; game++)
            failed = play_game(producer, &r, game, &pushed) != 0;
    }

    /* Close even after a failed push: it publishes what was accepted. */
    status = dq_producer_close(producer);
    if (status != DQ_STATUS_OK) {
        report_failure("dq_producer_close", status);
        failed = 1;
    }
    dq_producer_free(producer);

    if (failed)
        return 1;
    if (!opts.self_check)
        printf("{\"bot\":\"c\",\"games\":%" PRIu64 ",\"transitions\":%" PRIu64
               "}\n",
               opts.games, pushed);
    return 0;
}
