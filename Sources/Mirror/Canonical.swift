import AccessModel

/// Deterministic JSON for entities: fixed field order, sorted maps. Stored in each table's
/// `record` column to tell whether anything changed, and written to the audit log as before/after.
///
/// Built as UTF-8 bytes in one buffer and turned into a `String` once: a bulk apply builds one
/// record per entity (100k users), so string concatenation was a measurable part of it.
struct JSONObject {
    private var bytes: [UInt8]
    private var first = true

    init() {
        bytes = [0x7B]  // {
        bytes.reserveCapacity(256)
    }

    private mutating func key(_ name: String) {
        if !first { bytes.append(0x2C) }  // ,
        first = false
        JSONObject.quote(name, into: &bytes)
        bytes.append(0x3A)  // :
    }

    mutating func add(_ name: String, _ value: String?) {
        key(name)
        if let value { JSONObject.quote(value, into: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
    }

    mutating func add(_ name: String, _ value: Int) {
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func add(_ name: String, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
    }

    mutating func add(_ name: String, strings: [String]) {
        key(name)
        bytes.append(0x5B)  // [
        for (i, string) in strings.enumerated() {
            if i > 0 { bytes.append(0x2C) }
            JSONObject.quote(string, into: &bytes)
        }
        bytes.append(0x5D)  // ]
    }

    /// Adds a nested object.
    mutating func add(_ name: String, object: JSONObject) {
        key(name)
        bytes.append(contentsOf: object.bytes)
        bytes.append(0x7D)
    }

    var string: String {
        var out = bytes
        out.append(0x7D)  // }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `value` as a JSON string: quotes, backslashes and control characters escaped,
    /// everything else (non-ASCII too) as is.
    static func quote(_ value: String, into bytes: inout [UInt8]) {
        bytes.append(0x22)
        let utf8 = value.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            bytes.append(contentsOf: utf8)
        } else {
            // Only ASCII bytes need escaping, and UTF-8 never uses them inside a multi-byte character.
            for byte in utf8 {
                switch byte {
                case 0x22: bytes.append(contentsOf: [0x5C, 0x22])
                case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, 0x6E])
                case 0x0D: bytes.append(contentsOf: [0x5C, 0x72])
                case 0x09: bytes.append(contentsOf: [0x5C, 0x74])
                case 0..<0x20:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(0x22)
    }

    static func quote(_ value: String) -> String {
        var bytes: [UInt8] = []
        quote(value, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum Canonical {
    static func record(_ hc: HealthCenter) -> String {
        var o = JSONObject()
        o.add("code", hc.id.rawValue)
        o.add("name", hc.name)
        return o.string
    }

    static func record(_ venue: CareVenue) -> String {
        var o = JSONObject()
        o.add("code", venue.id.rawValue)
        o.add("health_center", venue.healthCenter.rawValue)
        o.add("name", venue.name)
        return o.string
    }

    static func record(_ provider: Provider) -> String {
        var o = JSONObject()
        o.add("code", provider.id.rawValue)
        o.add("health_center", provider.healthCenter.rawValue)
        o.add("display_name", provider.displayName)
        o.add("directory_id", provider.directoryID)
        return o.string
    }

    static func record(_ pool: Pool) -> String {
        var o = JSONObject()
        o.add("code", pool.id.rawValue)
        o.add("health_center", pool.healthCenter.rawValue)
        o.add("name", pool.name)
        o.add("visibility", pool.visibility.rawValue)
        o.add("providers", strings: pool.providers.map(\.rawValue).sorted())
        return o.string
    }

    static func record(_ role: Role) -> String {
        var o = JSONObject()
        o.add("name", role.id.rawValue)
        o.add("all_access", role.isAllAccess)
        var modules = JSONObject()
        for (module, privilege) in role.modules.sorted(by: { $0.key < $1.key }) { modules.add(module.rawValue, privilege.name) }
        o.add("modules", object: modules)
        return o.string
    }

    static func record(_ group: Group) -> String {
        var o = JSONObject()
        o.add("id", group.id.rawValue)
        o.add("name", group.name)
        o.add("kind", group.kind.rawValue)
        o.add("health_center", group.healthCenter.rawValue)
        o.add("care_venues", strings: group.careVenues.map(\.rawValue).sorted())
        o.add("scheduling_ability", group.schedulingAbility)
        o.add("auto_add_new_providers", group.autoAddNewProviders)
        o.add("directory_dn", group.directoryDN)
        var modules = JSONObject()
        for (module, grant) in group.modules.sorted(by: { $0.key < $1.key }) {
            var m = JSONObject()
            m.add("privacy", grant.privacy.name)
            m.add("default_privilege", grant.defaultPrivilege.name)
            var targets = JSONObject()
            for (target, entry) in grant.targets.sorted(by: { $0.key < $1.key }) {
                var t = JSONObject()
                t.add("privilege", entry.privilege.name)
                if let override = entry.privacyOverride { t.add("privacy", override.name) }
                targets.add(target, object: t)
            }
            m.add(group.kind == .provider ? "providers" : "pools", object: targets)
            modules.add(module.rawValue, object: m)
        }
        o.add("modules", object: modules)
        return o.string
    }

    /// Everything about a user except their account state, which has its own columns and events.
    static func record(_ user: User) -> String {
        var o = JSONObject()
        o.add("user_code", user.code.rawValue)
        o.add("directory_id", user.directoryID)
        o.add("directory_dn", user.directoryDN)
        o.add("first_name", user.firstName)
        o.add("last_name", user.lastName)
        o.add("title", user.title)
        o.add("email", user.email)
        o.add("health_centers", strings: user.healthCenters.map(\.rawValue).sorted())
        o.add("super_administrator", user.isSuperAdministrator)
        o.add("auto_logout_minutes", user.autoLogoutMinutes)
        o.add("default_workflow_view", user.defaultViews.workflow)
        o.add("default_patient_view", user.defaultViews.patient)
        o.add("default_document_tab", user.defaultViews.documentTab)
        o.add("break_glass", user.isBreakGlass)
        o.add("flags", object: flagsObject(user.flags))
        return o.string
    }

    static func flags(_ flags: [String: Bool]) -> String {
        flagsObject(flags).string
    }

    private static func flagsObject(_ flags: [String: Bool]) -> JSONObject {
        var o = JSONObject()
        for (name, value) in flags.sorted(by: { $0.key < $1.key }) { o.add(name, value) }
        return o
    }

    static func record(_ state: AccountState) -> String {
        var o = JSONObject()
        o.add("active", state.isActive)
        o.add("locked", state.isLocked)
        o.add("locked_by_directory", state.lockedByDirectory)
        o.add("locked_locally", state.lockedLocally)
        o.add("inactive_by_directory", state.inactiveByDirectory)
        o.add("inactive_locally", state.inactiveLocally)
        o.add("reason", state.reason)
        return o.string
    }
}
