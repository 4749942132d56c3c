import AccessModel

/// Deterministic JSON for entities: fixed field order, sorted maps. Stored in each table's
/// `record` column to tell whether anything changed (for users, only its fingerprint: see migration
/// v2), and written to the audit log as before/after.
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

    /// An object written into `buffer`'s storage (emptied first), so that a loop over many
    /// entities allocates nothing per entity: get the storage back with ``finish()``.
    init(reusing buffer: consuming [UInt8]) {
        bytes = buffer
        bytes.removeAll(keepingCapacity: true)
        bytes.append(0x7B)  // {
    }

    /// Closes the object and hands its bytes (the storage passed in, if any) back.
    mutating func finish() -> [UInt8] {
        bytes.append(0x7D)  // }
        let out = bytes
        bytes = []
        return out
    }

    /// Opens a nested object named `name`; add its members, then ``closeObject()``.
    mutating func openObject(_ name: String) {
        key(name)
        bytes.append(0x7B)  // {
        first = true
    }

    /// Closes the object ``openObject(_:)`` opened.
    mutating func closeObject() {
        bytes.append(0x7D)  // }
        first = false
    }

    /// Adds `json`, already valid JSON text, as the value of `name`.
    mutating func add(_ name: String, json: String) {
        key(name)
        bytes.append(contentsOf: json.utf8)
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
        var value = value
        value.withUTF8 { utf8 in
            // A plain loop: this runs for every field of every record of a bulk apply.
            var plain = true
            for byte in utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                plain = false
                break
            }
            if plain {
                bytes.append(contentsOf: utf8)
                return
            }
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
        // Only when set: the records of roles stored before v7 stay as they were.
        if role.isBase { o.add("base", true) }
        if let dn = role.directoryDN { o.add("directory_dn", dn) }
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
                if entry.addedAutomatically { t.add("auto_added", true) }
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
        var buffer: [UInt8] = []
        write(user, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// ``record(_:)-(User)`` as UTF-8 bytes in `buffer`'s storage (replacing what it held).
    static func write(_ user: User, into buffer: inout [UInt8]) {
        var o = JSONObject(reusing: buffer)
        buffer = []
        userFields(
            &o, code: user.code.rawValue, directoryID: user.directoryID, directoryDN: user.directoryDN,
            firstName: user.firstName, lastName: user.lastName, title: user.title, email: user.email,
            healthCenters: user.healthCenters.count == 1 ? [user.healthCenters.first!.rawValue] : user.healthCenters.map(\.rawValue).sorted(),
            superAdministrator: user.isSuperAdministrator, autoLogoutMinutes: user.autoLogoutMinutes,
            workflow: user.defaultViews.workflow, patient: user.defaultViews.patient, documentTab: user.defaultViews.documentTab,
            breakGlass: user.isBreakGlass)
        o.openObject("flags")
        for (name, value) in user.flags.sorted(by: { $0.key < $1.key }) { o.add(name, value) }
        o.closeObject()
        buffer = o.finish()
    }

    /// A user's record rebuilt from its stored columns (`flags` is the stored `flags` column,
    /// which ``flags(_:)`` wrote): the same text ``record(_:)-(User)`` gave when it was stored.
    static func userRecord(
        code: String, directoryID: String?, directoryDN: String?, firstName: String, lastName: String, title: String?,
        email: String?, healthCenters: [String], superAdministrator: Bool, autoLogoutMinutes: Int, workflow: String?,
        patient: String?, documentTab: String?, breakGlass: Bool, flags: String
    ) -> String {
        var o = JSONObject()
        userFields(
            &o, code: code, directoryID: directoryID, directoryDN: directoryDN, firstName: firstName, lastName: lastName,
            title: title, email: email, healthCenters: healthCenters.sorted(), superAdministrator: superAdministrator,
            autoLogoutMinutes: autoLogoutMinutes, workflow: workflow, patient: patient, documentTab: documentTab, breakGlass: breakGlass)
        o.add("flags", json: flags)
        return o.string
    }

    /// The record's fields before `flags`, in their fixed order.
    private static func userFields(
        _ o: inout JSONObject, code: String, directoryID: String?, directoryDN: String?, firstName: String, lastName: String,
        title: String?, email: String?, healthCenters: [String], superAdministrator: Bool, autoLogoutMinutes: Int,
        workflow: String?, patient: String?, documentTab: String?, breakGlass: Bool
    ) {
        o.add("user_code", code)
        o.add("directory_id", directoryID)
        o.add("directory_dn", directoryDN)
        o.add("first_name", firstName)
        o.add("last_name", lastName)
        o.add("title", title)
        o.add("email", email)
        o.add("health_centers", strings: healthCenters)
        o.add("super_administrator", superAdministrator)
        o.add("auto_logout_minutes", autoLogoutMinutes)
        o.add("default_workflow_view", workflow)
        o.add("default_patient_view", patient)
        o.add("default_document_tab", documentTab)
        o.add("break_glass", breakGlass)
    }

    /// A 64-bit fingerprint of a record's bytes: the first 8 bytes of their SHA-256. Stored beside
    /// an entity so that a re-apply compares 8 bytes instead of the whole record. A cryptographic
    /// hash, because whoever edits the directory chooses the bytes: with a weak hash a crafted
    /// change could match the stored fingerprint and go unwritten and unaudited.
    static func fingerprint(_ bytes: UnsafeRawBufferPointer) -> Int64 {
        let h = SHA256.hash(bytes)
        return Int64(bitPattern: UInt64(h.0) << 32 | UInt64(h.1))
    }

    static func fingerprint(_ record: String) -> Int64 {
        var record = record
        return record.withUTF8 { fingerprint(UnsafeRawBufferPointer($0)) }
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
