import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig

/// The attribute that changes whenever a directory entry changes, for the flavors where it can
/// be trusted to tell "unchanged" (nil elsewhere: those always read everything).
///
/// - OpenLDAP: `entryCSN`, written by slapd on every add, modify and rename (including the
///   `member` changes of a group), with microseconds and the server id, replicated unchanged.
/// - 389-ds / generic: only `modifyTimestamp`, one-second granular: two modifies within one
///   second, the second after Roster read the first, would look unchanged. Not used.
/// - Active Directory: `uSNChanged` is per domain controller (another DC numbers the same
///   entry differently), so it would have to be tied to the DC's `invocationId`. Not used yet.
public enum ChangeMarker {
    public static func attribute(for flavor: RosterConfiguration.Flavor) -> String? {
        flavor == .openldap ? "entryCSN" : nil
    }

    /// Bumped whenever the mapping or the stored entry encoding changes meaning, so that
    /// entries stored by an older Roster are never reused.
    static let version = "roster-entries-3"  // 3: the model has a base role (and All Access roles)

    /// A fingerprint of everything besides the entries themselves that a reconcile's result
    /// depends on: the whole configuration, the mapping version and the directory's lockout
    /// duration. A different fingerprint means the stored entries cannot be reused.
    public static func fingerprint(_ configuration: RosterConfiguration, lockout: LockoutPolicy) -> String {
        let text = version + "\n" + stableDescription(configuration) + "\nlockout=" + lockout.description
        return Mirror.sha256Hex(text)
    }

    /// A description of a value that does not depend on the order of dictionaries and sets
    /// (Swift randomizes it per process).
    static func stableDescription(_ value: Any) -> String {
        let reflection = Swift.Mirror(reflecting: value)
        if reflection.children.isEmpty && reflection.displayStyle != .collection && reflection.displayStyle != .dictionary
            && reflection.displayStyle != .set && reflection.displayStyle != .optional {
            return "\(type(of: value))(\(String(reflecting: value)))"
        }
        var parts = reflection.children.map { child in (child.label.map { $0 + ":" } ?? "") + stableDescription(child.value) }
        if reflection.displayStyle == .dictionary || reflection.displayStyle == .set { parts.sort() }
        return "\(type(of: value)){" + parts.joined(separator: ",") + "}"
    }
}

/// The compact encoding of what a reconcile read from an entry: a sequence of fields, each
/// a tag byte (0 absent, 1 text) and, for text, a 4-byte length and the UTF-8 bytes.
struct FieldWriter {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(256) }

    /// A tag (0 for nil, 1 for text), then the UTF-8 length in 4 bytes, big-endian, and the bytes.
    mutating func text(_ value: String?) {
        guard var value else { bytes.append(0); return }
        bytes.append(1)
        value.withUTF8 { utf8 in
            let count = UInt32(utf8.count)
            bytes.append(UInt8(count >> 24))
            bytes.append(UInt8((count >> 16) & 0xFF))
            bytes.append(UInt8((count >> 8) & 0xFF))
            bytes.append(UInt8(count & 0xFF))
            bytes.append(contentsOf: utf8)
        }
    }
    mutating func bool(_ value: Bool) { text(value ? "1" : "0") }
    mutating func int(_ value: Int) { text(String(value)) }
    mutating func list(_ values: [String]) {
        int(values.count)
        for value in values { text(value) }
    }
    var data: Data { Data(bytes) }
}

struct FieldReader {
    struct Malformed: Error {}
    let bytes: [UInt8]
    var position = 0

    init(_ data: Data) { bytes = [UInt8](data) }

    mutating func text() throws -> String? {
        guard position < bytes.count else { throw Malformed() }
        let tag = bytes[position]
        position += 1
        if tag == 0 { return nil }
        guard tag == 1, position + 4 <= bytes.count else { throw Malformed() }
        let count = Int(bytes[position]) << 24 | Int(bytes[position + 1]) << 16 | Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
        position += 4
        guard position + count <= bytes.count else { throw Malformed() }
        defer { position += count }
        return String(decoding: bytes[position..<position + count], as: UTF8.self)
    }
    mutating func required() throws -> String {
        guard let value = try text() else { throw Malformed() }
        return value
    }
    mutating func bool() throws -> Bool { try required() == "1" }
    mutating func int() throws -> Int {
        guard let value = Int(try required()) else { throw Malformed() }
        return value
    }
    mutating func list() throws -> [String] {
        let count = try int()
        guard count >= 0, count <= bytes.count else { throw Malformed() }
        return try (0..<count).map { _ in try required() }
    }
}

/// What a user entry gave: a mapped user (without the super-administrator flag, which comes
/// from groups and is set again each reconcile) or the problem that skipped it.
enum UserEntryContent {
    static func encode(_ outcome: Swift.Result<MappedUser, MappingProblem>) -> Data {
        var writer = FieldWriter()
        return encode(outcome, using: &writer)
    }

    /// ``encode(_:)`` through `w`, whose buffer is emptied first and kept: a reader encoding
    /// every entry of a directory grows one buffer once instead of one per entry.
    static func encode(_ outcome: Swift.Result<MappedUser, MappingProblem>, using w: inout FieldWriter) -> Data {
        w.bytes.removeAll(keepingCapacity: true)
        switch outcome {
        case .failure(let problem):
            w.text("problem")
            w.text(problem.dn)
            w.text(problem.message)
        case .success(let mapped):
            let user = mapped.user
            w.text("user")
            w.text(user.code.rawValue)
            w.text(user.directoryID)
            w.text(user.directoryDN)
            w.text(user.firstName)
            w.text(user.lastName)
            w.text(user.title)
            w.text(user.email)
            w.list(user.healthCenters.map(\.rawValue).sorted())
            w.int(user.autoLogoutMinutes)
            w.text(user.defaultViews.workflow)
            w.text(user.defaultViews.patient)
            w.text(user.defaultViews.documentTab)
            w.bool(user.isBreakGlass)
            w.list(user.flags.keys.sorted().flatMap { [$0, user.flags[$0]! ? "1" : "0"] })
            w.text(mapped.dn)
            w.text(mapped.directoryID)
            w.bool(mapped.isProvider)
            w.text(mapped.providerHealthCenter?.rawValue)
            w.bool(mapped.directoryState.locked)
            w.bool(mapped.directoryState.inactive)
            w.text(mapped.directoryState.reason)
            w.text(mapped.directoryState.nextChange.map { String($0.timeIntervalSinceReferenceDate.bitPattern) })
            w.list(mapped.notes.flatMap { [$0.dn, $0.message] })
        }
        return w.data
    }

    static func decode(_ data: Data, superAdministrator: (String) -> Bool) throws -> Swift.Result<MappedUser, MappingProblem> {
        var r = FieldReader(data)
        switch try r.required() {
        case "problem":
            return .failure(MappingProblem(dn: try r.required(), message: try r.required()))
        case "user":
            let code = UserCode(try r.required())
            let directoryID = try r.text()
            let directoryDN = try r.text()
            let first = try r.required()
            let last = try r.required()
            let title = try r.text()
            let email = try r.text()
            let healthCenters = Set(try r.list().map(HealthCenterID.init))
            let autoLogout = try r.int()
            let views = DefaultViews(workflow: try r.text(), patient: try r.text(), documentTab: try r.text())
            let breakGlass = try r.bool()
            let flagPairs = try r.list()
            guard flagPairs.count % 2 == 0 else { throw FieldReader.Malformed() }
            var flags: [String: Bool] = [:]
            for index in stride(from: 0, to: flagPairs.count, by: 2) { flags[flagPairs[index]] = flagPairs[index + 1] == "1" }
            let dn = try r.required()
            let mappedID = try r.text()
            let isProvider = try r.bool()
            let providerHealthCenter = try r.text().map(HealthCenterID.init)
            let locked = try r.bool()
            let inactive = try r.bool()
            let reason = try r.text()
            let nextChange = try r.text().map { text -> Date in
                guard let bits = UInt64(text) else { throw FieldReader.Malformed() }
                return Date(timeIntervalSinceReferenceDate: Double(bitPattern: bits))
            }
            let notePairs = try r.list()
            guard notePairs.count % 2 == 0 else { throw FieldReader.Malformed() }
            let notes = stride(from: 0, to: notePairs.count, by: 2).map { MappingProblem(dn: notePairs[$0], message: notePairs[$0 + 1]) }
            let state = DirectoryAccountState(locked: locked, inactive: inactive, reason: reason, nextChange: nextChange)
            let user = try User(code: code, directoryID: directoryID, directoryDN: directoryDN, firstName: first, lastName: last,
                                title: title, email: email, healthCenters: healthCenters, isSuperAdministrator: superAdministrator(dn),
                                state: AccountState().updatedByDirectory(locked: locked, inactive: inactive, reason: reason),
                                autoLogoutMinutes: autoLogout, defaultViews: views, isBreakGlass: breakGlass, flags: flags)
            return .success(MappedUser(user: user, dn: dn, directoryID: mappedID, isProvider: isProvider,
                                       providerHealthCenter: providerHealthCenter, directoryState: state, notes: notes))
        default:
            throw FieldReader.Malformed()
        }
    }
}

/// A directory group as read: DN (normalized), `cn` and its own member DNs (before nesting).
enum GroupEntryContent {
    static func encode(_ group: DirectoryGroup) -> Data {
        var w = FieldWriter()
        w.text(group.cn)
        w.list(group.members)
        return w.data
    }

    static func decode(_ data: Data, dn: String) throws -> DirectoryGroup {
        var r = FieldReader(data)
        return DirectoryGroup(dn: dn, cn: try r.text(), members: try r.list())
    }
}

/// The problems a reconcile reported, stored with its entries for a reconcile that finds
/// nothing changed.
enum ProblemsContent {
    static func encode(_ problems: [MappingProblem]) -> Data {
        var w = FieldWriter()
        w.list(problems.flatMap { [$0.dn, $0.message] })
        return w.data
    }

    static func decode(_ data: Data) -> [MappingProblem] {
        var r = FieldReader(data)
        guard let pairs = try? r.list(), pairs.count % 2 == 0 else { return [] }
        return stride(from: 0, to: pairs.count, by: 2).map { MappingProblem(dn: pairs[$0], message: pairs[$0 + 1]) }
    }
}
