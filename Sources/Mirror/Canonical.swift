import AccessModel

/// Deterministic JSON for entities: fixed field order, sorted maps. Stored in each table's
/// `record` column to tell whether anything changed, and written to the audit log as before/after.
struct JSONObject {
    private var text: String

    init() {
        text = "{"
        text.reserveCapacity(256)
    }
    private var first = true

    private mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        text += "\""
        text += name
        text += "\":"
    }

    mutating func add(_ name: String, _ value: String?) {
        key(name)
        if let value { text += JSONObject.quote(value) } else { text += "null" }
    }

    mutating func add(_ name: String, _ value: Int) {
        key(name)
        text += String(value)
    }

    mutating func add(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    mutating func add(_ name: String, strings: [String]) {
        key(name)
        text += "[" + strings.map(JSONObject.quote).joined(separator: ",") + "]"
    }

    mutating func add(_ name: String, raw: String) {
        key(name)
        text += raw
    }

    var string: String { text + "}" }

    static func quote(_ value: String) -> String {
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            return "\"" + value + "\""
        }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
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
        o.add("modules", raw: modules.string)
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
                targets.add(target, raw: t.string)
            }
            m.add(group.kind == .provider ? "providers" : "pools", raw: targets.string)
            modules.add(module.rawValue, raw: m.string)
        }
        o.add("modules", raw: modules.string)
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
        o.add("flags", raw: flags(user.flags))
        return o.string
    }

    static func flags(_ flags: [String: Bool]) -> String {
        var o = JSONObject()
        for (name, value) in flags.sorted(by: { $0.key < $1.key }) { o.add(name, value) }
        return o.string
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
