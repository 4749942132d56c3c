// lean-first-load: a lower bound for Roster's first sync, for comparison only (not part of Roster).
//
// The least a first load of the users could do, written lean in C: one thread reads the user
// entries with libldap (paged, 1000 per page, the attributes the floor's ldapsearch asks for, the
// read-ahead socket layer Roster uses); a second writes each user's row (Roster's user_account
// columns), health-center row and `user.created` audit row (a JSON record and a SHA-256 chain hash,
// Roster's own SHA-NI code) into a WAL SQLite file in one transaction, syncing the WAL as it goes;
// a third writes each entry's content into a second SQLite file, as Roster's entry store does.
// No groups, providers, memberships or mapping rules: the real first load does more.
//
// Build (SHA-NI CPUs; libldap-dev and libsqlite3-dev, which scripts/setup installs):
//   cc -O2 -o .build/lean-first-load Benchmarks/LeanFirstLoad/lean-first-load.c Sources/CSHA256/csha256.c
//      -ISources/CSHA256/include -lldap -llber -lsqlite3 -lpthread
// Run: lean-first-load URL BIND_DN PASSWORD_FILE USERS_BASE OUTPUT_DIRECTORY [--no-audit] [--no-entries]
// Prints the seconds to the end of the read, of the rows and of both commits.
#define _GNU_SOURCE
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "csha256.h"

enum { ATTRIBUTES = 11, BATCH = 256, ARENA = BATCH * 2048, SYNC_EVERY = 2048 };
enum { UID, GIVEN_NAME, SN, DISPLAY_NAME, MAIL, TITLE, DEPARTMENT, LOCKED_TIME, SHADOW_EXPIRE, ENTRY_UUID, ENTRY_CSN };
static const char *attributes[] = {"uid", "givenName", "sn", "displayName", "mail", "title", "departmentNumber",
                                   "pwdAccountLockedTime", "shadowExpire", "entryUUID", "entryCSN", NULL};
static size_t attributeLengths[ATTRIBUTES];

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "lean-first-load: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static struct timespec started;
static double elapsed(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - started.tv_sec) + (double)(now.tv_nsec - started.tv_nsec) / 1e9;
}

// Entries travel in batches, each batch to both writers; the last writer done with it frees it.
typedef struct {
    const char *dn;
    const char *value[ATTRIBUTES];
} Entry;

typedef struct Batch {
    Entry entries[BATCH];
    int count, holders;
    size_t used;
    char arena[ARENA];
    struct Batch *next[2];
} Batch;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    Batch *head, *tail;
    int closed, slot;
} Queue;

static Queue queues[2];

static void enqueue(Queue *queue, Batch *batch) {
    pthread_mutex_lock(&queue->lock);
    batch->next[queue->slot] = NULL;
    if (queue->tail) queue->tail->next[queue->slot] = batch; else queue->head = batch;
    queue->tail = batch;
    pthread_cond_signal(&queue->ready);
    pthread_mutex_unlock(&queue->lock);
}

static Batch *dequeue(Queue *queue) {
    pthread_mutex_lock(&queue->lock);
    while (!queue->head && !queue->closed) pthread_cond_wait(&queue->ready, &queue->lock);
    Batch *batch = queue->head;
    if (batch && !(queue->head = batch->next[queue->slot])) queue->tail = NULL;
    pthread_mutex_unlock(&queue->lock);
    return batch;
}

static void done(Batch *batch) {
    if (__atomic_sub_fetch(&batch->holders, 1, __ATOMIC_ACQ_REL) == 0) free(batch);
}

static const char *keep(Batch *batch, const char *bytes, size_t length) {
    if (batch->used + length + 1 > ARENA) fail("an entry is too large for this tool", NULL);
    char *copy = batch->arena + batch->used;
    memcpy(copy, bytes, length);
    copy[length] = 0;
    batch->used += length + 1;
    return copy;
}

static void handOver(Batch *batch) {
    batch->holders = 2;
    enqueue(&queues[0], batch);
    enqueue(&queues[1], batch);
}

static const char *url, *bindDN, *passwordFile, *usersBase, *outputDirectory;
static int withAudit = 1, withEntries = 1;
static double readDone, rowsDone, mirrorCommitted, entriesCommitted;

static void *readUsers(void *unused) {
    (void)unused;
    char password[512];
    FILE *file = fopen(passwordFile, "r");
    if (!file || !fgets(password, sizeof password, file)) fail("cannot read the password file", passwordFile);
    fclose(file);
    password[strcspn(password, "\r\n")] = 0;
    LDAP *ld;
    int version = 3;
    if (ldap_initialize(&ld, url) != LDAP_SUCCESS) fail("bad URL", url);
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    struct berval credentials = {strlen(password), password};
    int rc = ldap_sasl_bind_s(ld, bindDN, LDAP_SASL_SIMPLE, &credentials, NULL, NULL, NULL);
    if (rc != LDAP_SUCCESS) fail("bind failed", ldap_err2string(rc));
    Sockbuf *sockbuf;
    ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sockbuf);
    ber_sockbuf_add_io(sockbuf, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER, NULL);

    struct berval *cookie = NULL;
    Batch *batch = NULL;
    do {
        LDAPControl *page = NULL, *controls[2] = {NULL, NULL};
        ldap_create_page_control(ld, 1000, cookie, 0, &page);
        controls[0] = page;
        if (cookie) { ber_bvfree(cookie); cookie = NULL; }
        int id;
        rc = ldap_search_ext(ld, usersBase, LDAP_SCOPE_SUBTREE, "(objectClass=inetOrgPerson)", (char **)attributes, 0, controls, NULL, NULL, 0, &id);
        ldap_control_free(page);
        if (rc != LDAP_SUCCESS) fail("search failed", ldap_err2string(rc));
        for (int pageDone = 0; !pageDone;) {
            LDAPMessage *message;
            rc = ldap_result(ld, id, LDAP_MSG_ONE, NULL, &message);
            if (rc == LDAP_RES_SEARCH_ENTRY) {
                if (!batch && !(batch = calloc(1, sizeof *batch))) fail("out of memory", NULL);
                Entry *entry = &batch->entries[batch->count];
                memset(entry, 0, sizeof *entry);
                BerElement *ber = NULL;
                struct berval dn, name, *values;
                if (ldap_get_dn_ber(ld, message, &ber, &dn) != LDAP_SUCCESS) fail("an entry without a DN", NULL);
                entry->dn = keep(batch, dn.bv_val, dn.bv_len);
                while (ldap_get_attribute_ber(ld, message, ber, &name, &values) == LDAP_SUCCESS && name.bv_val) {
                    int index = 0;
                    while (index < ATTRIBUTES && !(name.bv_len == attributeLengths[index] && strncasecmp(name.bv_val, attributes[index], name.bv_len) == 0)) index++;
                    if (index < ATTRIBUTES && values && values[0].bv_val) entry->value[index] = keep(batch, values[0].bv_val, values[0].bv_len);
                    if (values) ber_memfree(values);
                }
                ber_free(ber, 0);
                if (++batch->count == BATCH) { handOver(batch); batch = NULL; }
            } else if (rc == LDAP_RES_SEARCH_RESULT) {
                LDAPControl **returned = NULL;
                int code;
                ldap_parse_result(ld, message, &code, NULL, NULL, NULL, &returned, 0);
                if (code != LDAP_SUCCESS) fail("the search ended with an error", ldap_err2string(code));
                LDAPControl *response = returned ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned, NULL) : NULL;
                if (response) {
                    ber_int_t estimate;
                    struct berval next = {0, NULL};
                    ldap_parse_pageresponse_control(ld, response, &estimate, &next);
                    if (next.bv_len > 0) cookie = ber_bvdup(&next);
                    ber_memfree(next.bv_val);
                }
                ldap_controls_free(returned);
                pageDone = 1;
            } else if (rc < 0) {
                fail("reading the results failed", ldap_err2string(rc));
            }
            ldap_msgfree(message);
        }
    } while (cookie);
    if (batch && batch->count) handOver(batch); else free(batch);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&queues[i].lock);
        queues[i].closed = 1;
        pthread_cond_broadcast(&queues[i].ready);
        pthread_mutex_unlock(&queues[i].lock);
    }
    readDone = elapsed();
    ldap_unbind_ext_s(ld, NULL, NULL);
    return NULL;
}

static sqlite3 *openDatabase(const char *name, const char *schema) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outputDirectory, name);
    unlink(path);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) fail("cannot open", path);
    // Like Roster, leave the WAL to a later checkpoint rather than copy it into the file on close.
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    char *error;
    if (sqlite3_exec(db, "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-4096;"
                         " PRAGMA wal_autocheckpoint=0;", NULL, NULL, &error) != SQLITE_OK
        || sqlite3_exec(db, schema, NULL, NULL, &error) != SQLITE_OK
        || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &error) != SQLITE_OK) fail("cannot set up the database", error);
    return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
    sqlite3_stmt *statement;
    if (sqlite3_prepare_v2(db, sql, -1, &statement, NULL) != SQLITE_OK) fail("cannot prepare", sqlite3_errmsg(db));
    return statement;
}

static void run(sqlite3 *db, sqlite3_stmt *statement) {
    if (sqlite3_step(statement) != SQLITE_DONE) fail("an insert failed", sqlite3_errmsg(db));
    sqlite3_reset(statement);
}

static void commit(sqlite3 *db) {
    char *error;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, &error) != SQLITE_OK) fail("the commit failed", error);
}

static const char *orEmpty(const char *text) { return text ? text : ""; }

// SHA-256 of `length` bytes with the SHA-NI compression (the padding done here), as hex.
static void sha256Hex(const uint8_t *bytes, size_t length, char hex[65]) {
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t whole = length / 64;
    roster_sha256_hardware_blocks(state, bytes, whole);
    uint8_t tail[128] = {0};
    size_t rest = length - whole * 64;
    memcpy(tail, bytes + whole * 64, rest);
    tail[rest] = 0x80;
    size_t tailBlocks = rest + 9 > 64 ? 2 : 1;
    uint64_t bits = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) tail[tailBlocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    roster_sha256_hardware_blocks(state, tail, tailBlocks);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        uint8_t byte = (uint8_t)(state[i / 4] >> (24 - 8 * (i % 4)));
        hex[2 * i] = digits[byte >> 4];
        hex[2 * i + 1] = digits[byte & 15];
    }
    hex[64] = 0;
}

// Syncs the mirror's WAL beside the writes, as Roster does, so that the commit's own sync is short.
static pthread_mutex_t syncLock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t syncWanted = PTHREAD_COND_INITIALIZER;
static int syncRequests, syncStop;

static void *syncWAL(void *unused) {
    (void)unused;
    char path[4096];
    snprintf(path, sizeof path, "%s/mirror.sqlite-wal", outputDirectory);
    int fd = -1;
    pthread_mutex_lock(&syncLock);
    for (;;) {
        while (!syncRequests && !syncStop) pthread_cond_wait(&syncWanted, &syncLock);
        if (syncStop) break;
        syncRequests = 0;
        pthread_mutex_unlock(&syncLock);
        if (fd < 0) fd = open(path, O_RDONLY);
        if (fd >= 0) fdatasync(fd);
        pthread_mutex_lock(&syncLock);
    }
    pthread_mutex_unlock(&syncLock);
    if (fd >= 0) close(fd);
    return NULL;
}

static void *writeMirror(void *unused) {
    (void)unused;
    sqlite3 *db = openDatabase("mirror.sqlite",
        "CREATE TABLE user_account (user_code_key TEXT PRIMARY KEY, user_code TEXT NOT NULL COLLATE NOCASE, directory_id TEXT, directory_dn TEXT,"
        " display_name TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL, title TEXT, email TEXT, super_administrator INTEGER NOT NULL,"
        " active INTEGER NOT NULL, locked INTEGER NOT NULL, locked_by_directory INTEGER NOT NULL, locked_locally INTEGER NOT NULL,"
        " inactive_by_directory INTEGER NOT NULL, inactive_locally INTEGER NOT NULL, state_reason TEXT, state_source TEXT,"
        " auto_logout_minutes INTEGER NOT NULL, default_workflow_view TEXT, default_patient_view TEXT, default_document_tab TEXT,"
        " break_glass INTEGER NOT NULL, flags TEXT NOT NULL, record TEXT NOT NULL, fingerprint INTEGER);"
        "CREATE TABLE user_health_center (user_code_key TEXT NOT NULL, health_center TEXT NOT NULL, PRIMARY KEY (user_code_key, health_center)) WITHOUT ROWID;"
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor_kind TEXT NOT NULL, actor TEXT NOT NULL, source TEXT,"
        " action TEXT NOT NULL, entity_type TEXT NOT NULL, entity_key TEXT NOT NULL, before TEXT, after TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);");
    sqlite3_stmt *user = prepare(db, "INSERT INTO user_account VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?11, 0, ?12, 0, NULL, NULL, 15,"
                                     " NULL, NULL, NULL, 0, '{}', '', ?13)");
    sqlite3_stmt *center = prepare(db, "INSERT INTO user_health_center VALUES (?1, ?2)");
    sqlite3_stmt *audit = prepare(db, "INSERT INTO audit_log (at, actor_kind, actor, source, action, entity_type, entity_key, before, after, prev_hash, hash)"
                                      " VALUES ('2026-11-25T00:00:00.000Z', 'directory', 'main', ?1, 'user.created', 'user', ?2, NULL, ?3, ?4, ?5)");
    char key[256], record[8192], previous[65] = "", hash[65];
    static uint8_t hashed[16384];
    long written = 0;
    for (Batch *batch; (batch = dequeue(&queues[0])); done(batch)) {
        for (int i = 0; i < batch->count; i++) {
            const Entry *entry = &batch->entries[i];
            const char *code = entry->value[UID];
            if (!code) continue;
            size_t keyLength = strlen(code) < sizeof key ? strlen(code) : sizeof key - 1;
            for (size_t j = 0; j < keyLength; j++) key[j] = (char)(code[j] >= 'A' && code[j] <= 'Z' ? code[j] + 32 : code[j]);
            key[keyLength] = 0;
            const char *centerID = entry->value[DEPARTMENT] ? entry->value[DEPARTMENT] : "HC1";
            int locked = entry->value[LOCKED_TIME] != NULL, inactive = entry->value[SHADOW_EXPIRE] != NULL;
            int recordLength = snprintf(record, sizeof record,
                "{\"user_code\":\"%s\",\"directory_id\":\"%s\",\"directory_dn\":\"%s\",\"first_name\":\"%s\",\"last_name\":\"%s\",\"title\":\"%s\","
                "\"email\":\"%s\",\"health_centers\":[\"%s\"],\"super_administrator\":false,\"auto_logout_minutes\":15,\"default_workflow_view\":null,"
                "\"default_patient_view\":null,\"default_document_tab\":null,\"break_glass\":false,\"flags\":{}}",
                code, orEmpty(entry->value[ENTRY_UUID]), entry->dn, orEmpty(entry->value[GIVEN_NAME]), orEmpty(entry->value[SN]),
                orEmpty(entry->value[TITLE]), orEmpty(entry->value[MAIL]), centerID);
            if (recordLength >= (int)sizeof record) fail("a record is too long for this tool", code);
            int hashedLength = snprintf((char *)hashed, sizeof hashed, "%s\n2026-11-25T00:00:00.000Z\ndirectory\nmain\n%s\nuser.created\nuser\n%s\n\n%s",
                                        previous, entry->dn, code, record);
            sha256Hex(hashed, (size_t)hashedLength, hash);
            sqlite3_bind_text(user, 1, key, (int)keyLength, SQLITE_STATIC);
            sqlite3_bind_text(user, 2, code, -1, SQLITE_STATIC);
            sqlite3_bind_text(user, 3, orEmpty(entry->value[ENTRY_UUID]), -1, SQLITE_STATIC);
            sqlite3_bind_text(user, 4, entry->dn, -1, SQLITE_STATIC);
            sqlite3_bind_text(user, 5, entry->value[DISPLAY_NAME] ? entry->value[DISPLAY_NAME] : code, -1, SQLITE_STATIC);
            sqlite3_bind_text(user, 6, orEmpty(entry->value[GIVEN_NAME]), -1, SQLITE_STATIC);
            sqlite3_bind_text(user, 7, orEmpty(entry->value[SN]), -1, SQLITE_STATIC);
            sqlite3_bind_text(user, 8, orEmpty(entry->value[TITLE]), -1, SQLITE_STATIC);
            sqlite3_bind_text(user, 9, orEmpty(entry->value[MAIL]), -1, SQLITE_STATIC);
            sqlite3_bind_int(user, 10, !inactive);
            sqlite3_bind_int(user, 11, locked);
            sqlite3_bind_int(user, 12, inactive);
            sqlite3_bind_int64(user, 13, (sqlite3_int64)strtoull(hash + 48, NULL, 16));
            run(db, user);
            sqlite3_bind_text(center, 1, key, (int)keyLength, SQLITE_STATIC);
            sqlite3_bind_text(center, 2, centerID, -1, SQLITE_STATIC);
            run(db, center);
            if (withAudit) {
                sqlite3_bind_text(audit, 1, entry->dn, -1, SQLITE_STATIC);
                sqlite3_bind_text(audit, 2, code, -1, SQLITE_STATIC);
                sqlite3_bind_text(audit, 3, record, recordLength, SQLITE_STATIC);
                sqlite3_bind_text(audit, 4, previous, -1, SQLITE_STATIC);
                sqlite3_bind_text(audit, 5, hash, 64, SQLITE_STATIC);
                run(db, audit);
                memcpy(previous, hash, sizeof hash);
            }
            if (++written % SYNC_EVERY == 0) {
                pthread_mutex_lock(&syncLock);
                syncRequests = 1;
                pthread_cond_signal(&syncWanted);
                pthread_mutex_unlock(&syncLock);
            }
        }
    }
    char *error;
    if (sqlite3_exec(db, "CREATE UNIQUE INDEX user_account_user_code ON user_account(user_code)", NULL, NULL, &error) != SQLITE_OK) fail("index", error);
    rowsDone = elapsed();
    pthread_mutex_lock(&syncLock);
    syncStop = 1;
    pthread_cond_signal(&syncWanted);
    pthread_mutex_unlock(&syncLock);
    sqlite3_finalize(user);
    sqlite3_finalize(center);
    sqlite3_finalize(audit);
    commit(db);
    mirrorCommitted = elapsed();
    sqlite3_close(db);
    fprintf(stderr, "%ld users written\n", written);
    return NULL;
}

static void *writeEntries(void *unused) {
    (void)unused;
    sqlite3 *db = openDatabase("entries.sqlite",
        "CREATE TABLE directory_entry (directory TEXT NOT NULL, kind TEXT NOT NULL, entry_id TEXT NOT NULL, marker TEXT NOT NULL, dn TEXT NOT NULL,"
        " next_change TEXT, content BLOB NOT NULL, PRIMARY KEY (directory, kind, entry_id)) WITHOUT ROWID;");
    sqlite3_stmt *insert = prepare(db, "INSERT INTO directory_entry VALUES ('main', 'user', ?1, ?2, ?3, NULL, ?4)");
    char content[8192];
    for (Batch *batch; (batch = dequeue(&queues[1])); done(batch)) {
        if (!withEntries) continue;
        for (int i = 0; i < batch->count; i++) {
            const Entry *entry = &batch->entries[i];
            size_t length = 0;
            for (int j = 0; j <= SHADOW_EXPIRE; j++) {
                size_t part = strlen(orEmpty(entry->value[j]));
                if (length + part + 1 > sizeof content) fail("an entry is too large for this tool", entry->dn);
                memcpy(content + length, orEmpty(entry->value[j]), part + 1);
                length += part + 1;
            }
            sqlite3_bind_text(insert, 1, orEmpty(entry->value[ENTRY_UUID]), -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 2, orEmpty(entry->value[ENTRY_CSN]), -1, SQLITE_STATIC);
            sqlite3_bind_text(insert, 3, entry->dn, -1, SQLITE_STATIC);
            sqlite3_bind_blob(insert, 4, content, (int)length, SQLITE_STATIC);
            run(db, insert);
        }
    }
    sqlite3_finalize(insert);
    commit(db);
    entriesCommitted = elapsed();
    sqlite3_close(db);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: lean-first-load URL BIND_DN PASSWORD_FILE USERS_BASE OUTPUT_DIRECTORY [--no-audit] [--no-entries]\n");
        return 2;
    }
    url = argv[1], bindDN = argv[2], passwordFile = argv[3], usersBase = argv[4], outputDirectory = argv[5];
    for (int i = 6; i < argc; i++) {
        if (strcmp(argv[i], "--no-audit") == 0) withAudit = 0;
        else if (strcmp(argv[i], "--no-entries") == 0) withEntries = 0;
        else fail("unknown option", argv[i]);
    }
    if (!roster_sha256_hardware_available()) fail("this tool needs a CPU with the SHA extensions (SHA-NI)", NULL);
    for (int i = 0; i < ATTRIBUTES; i++) attributeLengths[i] = strlen(attributes[i]);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_init(&queues[i].lock, NULL);
        pthread_cond_init(&queues[i].ready, NULL);
        queues[i].slot = i;
    }
    clock_gettime(CLOCK_MONOTONIC, &started);
    pthread_t reader, mirror, entries, syncer;
    pthread_create(&syncer, NULL, syncWAL, NULL);
    pthread_create(&mirror, NULL, writeMirror, NULL);
    pthread_create(&entries, NULL, writeEntries, NULL);
    pthread_create(&reader, NULL, readUsers, NULL);
    pthread_join(reader, NULL);
    pthread_join(mirror, NULL);
    pthread_join(entries, NULL);
    pthread_join(syncer, NULL);
    double total = elapsed();
    printf("read %.3f s, rows %.3f s, mirror committed %.3f s, entries committed %.3f s, total %.3f s\n",
           readDone, rowsDone, mirrorCommitted, entriesCommitted, total);
    return 0;
}
