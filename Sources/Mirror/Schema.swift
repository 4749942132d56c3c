import AccessModel
import GRDB

/// The mirror's migrations. Each is additive: tables, columns and views the application reads
/// are never renamed or removed (see docs/mirror.md).
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: model, audit log, events, sync state") { db in
            try db.execute(sql: v1Tables)
            for module in Module.allCases {
                try db.execute(
                    sql: "INSERT INTO module (name, display_name, provider_scoped) VALUES (?, ?, ?)",
                    arguments: [module.rawValue, module.displayName, module.isProviderScoped])
            }
            try db.execute(sql: v1Views)
        }
        migrator.registerMigration("v2: user fingerprints") { db in
            // A user's record is no longer stored in `record` (it repeated what the columns and
            // the audit log's `after` hold): `fingerprint` says whether a re-apply changes the
            // user, and the record is rebuilt from the columns when an update is audited. Rows
            // written before keep their `record` text, and get its fingerprint here.
            try db.execute(sql: "ALTER TABLE user_account ADD COLUMN fingerprint INTEGER")
            let rows = try Row.fetchAll(db, sql: "SELECT user_code_key, record FROM user_account")
            let update = try db.makeStatement(sql: "UPDATE user_account SET fingerprint = ? WHERE user_code_key = ?")
            for row in rows {
                let key: String = row[0]
                let record: String = row[1]
                try update.execute(arguments: [Canonical.fingerprint(record), key])
            }
        }
        migrator.registerMigration("v3: directory entries seen by the reconcile") { _ in
            // Created the tables `directory_entry` and `reconcile_basis`, which v4 moved to their
            // own file (``EntryStore``): a mirror older than v3 has nothing to create.
        }
        migrator.registerMigration("v4: directory entries move to their own file") { db in
            // See ``EntryStore``: written beside the apply instead of inside it. The next
            // reconcile finds no entries stored and reads every entry once.
            try db.execute(sql: "DROP TABLE IF EXISTS directory_entry; DROP TABLE IF EXISTS reconcile_basis;")
        }
        migrator.registerMigration("v5: grants added automatically") { db in
            // `auto_added` is 1 where rule 6 granted a provider (a new provider joining an
            // auto-add group), 0 where the group's configured providers do. Before v5 the two
            // could not be told apart: every grant of an auto-add group is taken as added
            // automatically, so that none is revoked by the upgrade. The next reconcile marks
            // those the configuration gives as configured. Those groups' records say so too, so
            // that the next apply compares like with like.
            try db.execute(sql: """
                ALTER TABLE group_provider_grant ADD COLUMN auto_added INTEGER NOT NULL DEFAULT 0 CHECK (auto_added IN (0, 1));
                ALTER TABLE group_pool_grant ADD COLUMN auto_added INTEGER NOT NULL DEFAULT 0 CHECK (auto_added IN (0, 1));
                UPDATE group_provider_grant SET auto_added = 1
                  WHERE group_id IN (SELECT id FROM access_group WHERE auto_add_new_providers = 1);
                """)
            for group in try Mirror.loadGroups(db) where group.autoAddNewProviders {
                try db.execute(sql: "UPDATE access_group SET record = ? WHERE id = ?", arguments: [Canonical.record(group), group.id.rawValue])
            }
        }
        migrator.registerMigration("v6: roles' directory groups") { db in
            // The directory group whose members hold a role, as groups have theirs: role
            // assignments name it as their source. Filled by the next reconcile.
            try db.execute(sql: "ALTER TABLE role ADD COLUMN directory_dn TEXT")
        }
        migrator.registerMigration("v7: the base role") { db in
            // The base role is held by every user without a `role_membership` row (DOMAIN: every
            // active user holds it): its grants join the views for everyone. The next reconcile
            // stores it (Roster's own, Base, when the configuration marks none).
            try db.execute(sql: """
                ALTER TABLE role ADD COLUMN is_base INTEGER NOT NULL DEFAULT 0 CHECK (is_base IN (0, 1));
                DROP VIEW effective_access;
                DROP VIEW effective_access_source;
                """)
            try db.execute(sql: v7EffectiveAccessViews)
        }
        return migrator
    }

    static let v1Tables = """
        CREATE TABLE module (
            name TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            provider_scoped INTEGER NOT NULL
        );
        CREATE TABLE health_center (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            record TEXT NOT NULL
        );
        CREATE TABLE care_venue (
            code TEXT PRIMARY KEY,
            health_center TEXT NOT NULL REFERENCES health_center(code),
            name TEXT NOT NULL,
            record TEXT NOT NULL
        );
        CREATE TABLE provider (
            code TEXT PRIMARY KEY,
            health_center TEXT NOT NULL REFERENCES health_center(code),
            display_name TEXT NOT NULL,
            directory_id TEXT,
            record TEXT NOT NULL
        );
        CREATE INDEX provider_health_center ON provider(health_center);
        CREATE TABLE pool (
            code TEXT PRIMARY KEY,
            health_center TEXT NOT NULL REFERENCES health_center(code),
            name TEXT NOT NULL,
            visibility TEXT NOT NULL CHECK (visibility IN ('all_providers', 'reachable_providers_only')),
            record TEXT NOT NULL
        );
        CREATE TABLE pool_provider (
            pool TEXT NOT NULL REFERENCES pool(code) ON DELETE CASCADE,
            provider TEXT NOT NULL REFERENCES provider(code),
            PRIMARY KEY (pool, provider)
        ) WITHOUT ROWID;
        CREATE TABLE access_group (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('provider', 'pool')),
            health_center TEXT NOT NULL REFERENCES health_center(code),
            scheduling_ability INTEGER NOT NULL,
            auto_add_new_providers INTEGER NOT NULL,
            directory_dn TEXT,
            record TEXT NOT NULL,
            UNIQUE (health_center, name)
        );
        CREATE TABLE group_care_venue (
            group_id TEXT NOT NULL REFERENCES access_group(id) ON DELETE CASCADE,
            care_venue TEXT NOT NULL REFERENCES care_venue(code),
            PRIMARY KEY (group_id, care_venue)
        ) WITHOUT ROWID;
        CREATE TABLE group_module (
            group_id TEXT NOT NULL REFERENCES access_group(id) ON DELETE CASCADE,
            module TEXT NOT NULL REFERENCES module(name),
            privacy INTEGER NOT NULL CHECK (privacy BETWEEN 1 AND 4),
            default_privilege INTEGER NOT NULL CHECK (default_privilege IN (1, 2)),
            PRIMARY KEY (group_id, module)
        ) WITHOUT ROWID;
        CREATE TABLE group_provider_grant (
            group_id TEXT NOT NULL,
            module TEXT NOT NULL,
            provider TEXT NOT NULL REFERENCES provider(code),
            privilege INTEGER NOT NULL CHECK (privilege IN (1, 2)),
            privacy_override INTEGER CHECK (privacy_override IN (3, 4)),
            PRIMARY KEY (group_id, module, provider),
            FOREIGN KEY (group_id, module) REFERENCES group_module(group_id, module) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX group_provider_grant_provider ON group_provider_grant(provider);
        CREATE TABLE group_pool_grant (
            group_id TEXT NOT NULL,
            module TEXT NOT NULL,
            pool TEXT NOT NULL REFERENCES pool(code),
            privilege INTEGER NOT NULL CHECK (privilege IN (1, 2)),
            privacy_override INTEGER CHECK (privacy_override IN (3, 4)),
            PRIMARY KEY (group_id, module, pool),
            FOREIGN KEY (group_id, module) REFERENCES group_module(group_id, module) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX group_pool_grant_pool ON group_pool_grant(pool);
        CREATE TABLE role (
            name TEXT PRIMARY KEY,
            is_all_access INTEGER NOT NULL,
            record TEXT NOT NULL
        );
        CREATE TABLE role_module (
            role TEXT NOT NULL REFERENCES role(name) ON DELETE CASCADE,
            module TEXT NOT NULL REFERENCES module(name),
            privilege INTEGER NOT NULL CHECK (privilege IN (1, 2)),
            PRIMARY KEY (role, module)
        ) WITHOUT ROWID;
        CREATE TABLE user_account (
            user_code_key TEXT PRIMARY KEY,
            user_code TEXT NOT NULL COLLATE NOCASE,
            directory_id TEXT,
            directory_dn TEXT,
            display_name TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            title TEXT,
            email TEXT,
            super_administrator INTEGER NOT NULL,
            active INTEGER NOT NULL,
            locked INTEGER NOT NULL,
            locked_by_directory INTEGER NOT NULL,
            locked_locally INTEGER NOT NULL,
            inactive_by_directory INTEGER NOT NULL,
            inactive_locally INTEGER NOT NULL,
            state_reason TEXT,
            state_source TEXT CHECK (state_source IN ('directory', 'local')),
            auto_logout_minutes INTEGER NOT NULL,
            default_workflow_view TEXT,
            default_patient_view TEXT,
            default_document_tab TEXT,
            break_glass INTEGER NOT NULL,
            flags TEXT NOT NULL,
            record TEXT NOT NULL
        );
        CREATE UNIQUE INDEX user_account_user_code ON user_account(user_code);
        CREATE TABLE user_health_center (
            user_code_key TEXT NOT NULL REFERENCES user_account(user_code_key),
            health_center TEXT NOT NULL REFERENCES health_center(code),
            PRIMARY KEY (user_code_key, health_center)
        ) WITHOUT ROWID;
        CREATE TABLE group_membership (
            group_id TEXT NOT NULL REFERENCES access_group(id) ON DELETE CASCADE,
            user_code_key TEXT NOT NULL REFERENCES user_account(user_code_key),
            PRIMARY KEY (group_id, user_code_key)
        ) WITHOUT ROWID;
        CREATE INDEX group_membership_user ON group_membership(user_code_key);
        CREATE TABLE role_membership (
            role TEXT NOT NULL REFERENCES role(name) ON DELETE CASCADE,
            user_code_key TEXT NOT NULL REFERENCES user_account(user_code_key),
            PRIMARY KEY (role, user_code_key)
        ) WITHOUT ROWID;
        CREATE INDEX role_membership_user ON role_membership(user_code_key);

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor_kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            source TEXT,
            action TEXT NOT NULL,
            entity_type TEXT NOT NULL,
            entity_key TEXT NOT NULL,
            before TEXT,
            after TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: its rows are never updated'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: its rows are never deleted'); END;

        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            user_code TEXT,
            group_id TEXT,
            detail TEXT
        );

        CREATE TABLE sync_state (
            directory TEXT PRIMARY KEY,
            cookie BLOB,
            last_full_reconcile TEXT,
            last_change_applied TEXT
        );
        """

    /// `u` is an active, unlocked user.
    static let eligible = "u.active = 1 AND u.locked = 0"
    /// `u` is a super administrator: the flag, or a role that is All Access.
    static let isSuper = """
        (u.super_administrator = 1 OR EXISTS (SELECT 1 FROM role_membership rm JOIN role r ON r.name = rm.role \
        WHERE rm.user_code_key = u.user_code_key AND r.is_all_access = 1))
        """

    /// The grants of the groups a user belongs to: provider groups, pool groups' pools.
    static let groupAccessSources = """
        SELECT u.user_code AS user_code, gm.module AS module, g.health_center AS health_center, NULL AS provider,
               gm.default_privilege AS privilege, gm.privacy AS privacy
        FROM user_account u
        JOIN group_membership m ON m.user_code_key = u.user_code_key
        JOIN access_group g ON g.id = m.group_id
        JOIN group_module gm ON gm.group_id = g.id
        WHERE \(eligible) AND NOT \(isSuper)
          AND NOT EXISTS (SELECT 1 FROM group_provider_grant x WHERE x.group_id = gm.group_id AND x.module = gm.module)
          AND NOT EXISTS (SELECT 1 FROM group_pool_grant x WHERE x.group_id = gm.group_id AND x.module = gm.module)
        UNION ALL
        SELECT u.user_code, pg.module, g.health_center, pg.provider, pg.privilege, COALESCE(pg.privacy_override, gm.privacy)
        FROM user_account u
        JOIN group_membership m ON m.user_code_key = u.user_code_key
        JOIN access_group g ON g.id = m.group_id
        JOIN group_provider_grant pg ON pg.group_id = g.id
        JOIN group_module gm ON gm.group_id = pg.group_id AND gm.module = pg.module
        WHERE \(eligible) AND NOT \(isSuper)
        UNION ALL
        SELECT u.user_code, pl.module, g.health_center, pp.provider, pl.privilege, COALESCE(pl.privacy_override, gm.privacy)
        FROM user_account u
        JOIN group_membership m ON m.user_code_key = u.user_code_key
        JOIN access_group g ON g.id = m.group_id
        JOIN group_pool_grant pl ON pl.group_id = g.id
        JOIN group_module gm ON gm.group_id = pl.group_id AND gm.module = pl.module
        JOIN pool p ON p.code = pl.pool
        JOIN pool_provider pp ON pp.pool = p.code
        WHERE \(eligible) AND NOT \(isSuper)
          AND (p.visibility = 'all_providers' OR EXISTS (
                SELECT 1 FROM group_membership m2
                JOIN access_group g2 ON g2.id = m2.group_id AND g2.kind = 'provider'
                JOIN group_provider_grant pg2 ON pg2.group_id = g2.id
                WHERE m2.user_code_key = u.user_code_key AND pg2.module = pl.module AND pg2.provider = pp.provider))
        """

    /// v1 to v6: the roles assigned to a user.
    static let v1RoleAccessSource = """
        SELECT u.user_code, rmod.module, uh.health_center, NULL, rmod.privilege, 1
        FROM user_account u
        JOIN role_membership rm ON rm.user_code_key = u.user_code_key
        JOIN role_module rmod ON rmod.role = rm.role
        JOIN user_health_center uh ON uh.user_code_key = u.user_code_key
        WHERE \(eligible) AND NOT \(isSuper)
          AND EXISTS (SELECT 1 FROM group_membership x WHERE x.user_code_key = u.user_code_key)
        """

    /// v7 on: the base role, which every user holds, and the roles assigned.
    static let roleAccessSource = """
        SELECT u.user_code, rmod.module, uh.health_center, NULL, rmod.privilege, 1
        FROM user_account u
        JOIN role r ON r.is_base = 1
          OR EXISTS (SELECT 1 FROM role_membership rm WHERE rm.role = r.name AND rm.user_code_key = u.user_code_key)
        JOIN role_module rmod ON rmod.role = r.name
        JOIN user_health_center uh ON uh.user_code_key = u.user_code_key
        WHERE \(eligible) AND NOT \(isSuper)
          AND EXISTS (SELECT 1 FROM group_membership x WHERE x.user_code_key = u.user_code_key)
        """

    /// Everything, for super administrators.
    static let superAdministratorAccessSources = """
        SELECT u.user_code, md.name, h.code, NULL, 2, 1
        FROM user_account u, module md, health_center h
        WHERE \(eligible) AND \(isSuper)
        UNION ALL
        SELECT u.user_code, md.name, p.health_center, p.code, 2, 1
        FROM user_account u, module md, provider p
        WHERE \(eligible) AND \(isSuper) AND md.provider_scoped = 1
        """

    /// `effective_access_source` (grants before they combine) and `effective_access`, with
    /// `roles` as the role grants' part.
    static func effectiveAccessViews(roles: String) -> String {
        "CREATE VIEW effective_access_source AS\n" + groupAccessSources + "\nUNION ALL\n" + roles + "\nUNION ALL\n"
            + superAdministratorAccessSources + ";\n\n" + """
            CREATE VIEW effective_access AS
            SELECT user_code, module, health_center, provider,
                   CASE MIN(privilege) WHEN 1 THEN 'read_only' ELSE 'full_access' END AS privilege,
                   MAX(privacy) AS privacy
            FROM effective_access_source
            GROUP BY user_code, module, health_center, provider;
            """
    }

    /// v7's views: v1's `effective_access_source` and `effective_access`, with the base role's
    /// grants for every user. The columns are v1's.
    static let v7EffectiveAccessViews = effectiveAccessViews(roles: roleAccessSource)

    static let v1Views = effectiveAccessViews(roles: v1RoleAccessSource) + "\n\n" + """
        CREATE VIEW user_access_status AS
        SELECT u.user_code AS user_code,
               u.display_name AS display_name,
               u.active AS active,
               u.locked AS locked,
               u.state_reason AS state_reason,
               u.state_source AS state_source,
               \(isSuper) AS super_administrator,
               (SELECT COUNT(*) FROM group_membership m WHERE m.user_code_key = u.user_code_key) AS group_count,
               CASE
                 WHEN u.active = 0 THEN 'inactive'
                 WHEN u.locked = 1 THEN 'locked'
                 WHEN \(isSuper) THEN 'ok'
                 WHEN NOT EXISTS (SELECT 1 FROM group_membership m WHERE m.user_code_key = u.user_code_key) THEN 'no_group'
                 ELSE 'ok'
               END AS access,
               u.auto_logout_minutes AS auto_logout_minutes
        FROM user_account u;

        CREATE VIEW group_listing AS
        SELECT g.id AS group_id, g.name AS name, g.kind AS kind, g.health_center AS health_center,
               g.scheduling_ability AS scheduling_ability, g.auto_add_new_providers AS auto_add_new_providers,
               (SELECT COUNT(*) FROM group_module gm WHERE gm.group_id = g.id AND gm.module <> 'user_preferences') AS module_count,
               (SELECT COUNT(DISTINCT provider) FROM group_provider_grant x WHERE x.group_id = g.id) AS provider_count,
               (SELECT COUNT(DISTINCT pool) FROM group_pool_grant x WHERE x.group_id = g.id) AS pool_count,
               (SELECT COUNT(*) FROM group_membership m WHERE m.group_id = g.id) AS member_count,
               CASE MIN(
                 COALESCE((SELECT MIN(privilege) FROM group_provider_grant x WHERE x.group_id = g.id), 2),
                 COALESCE((SELECT MIN(privilege) FROM group_pool_grant x WHERE x.group_id = g.id), 2),
                 COALESCE((SELECT MIN(default_privilege) FROM group_module gm WHERE gm.group_id = g.id AND gm.module <> 'user_preferences'), 2)
               ) WHEN 1 THEN 'read_only' ELSE 'full_access' END AS privilege,
               MAX(
                 COALESCE((SELECT MAX(privacy) FROM group_module gm WHERE gm.group_id = g.id AND gm.module <> 'user_preferences'), 1),
                 COALESCE((SELECT MAX(privacy_override) FROM group_provider_grant x WHERE x.group_id = g.id), 1),
                 COALESCE((SELECT MAX(privacy_override) FROM group_pool_grant x WHERE x.group_id = g.id), 1)
               ) AS privacy
        FROM access_group g;
        """
}
