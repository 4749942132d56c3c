import RosterConfig
import Sync

/// Any text as a DN. When the RFC 4514 parser accepts it, its normalized form parses again
/// to the same name (normalizing is idempotent and loses nothing), and the name lies within
/// each of its parents. The hot-path normalizer (`DN.normalize`, used for map keys) is
/// idempotent on any input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDistinguishedName(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)

    let key = DN.normalize(text)
    precondition(DN.normalize(key) == key, "DN.normalize is not idempotent for \(text.debugDescription): \(key.debugDescription)")

    guard let name = try? DistinguishedName(parsing: text) else { return 0 }
    let normalized = name.normalized
    let again: DistinguishedName
    do {
        again = try DistinguishedName(parsing: normalized)
    } catch {
        preconditionFailure("the normalized form \(normalized.debugDescription) of \(text.debugDescription) does not parse: \(error)")
    }
    precondition(again == name, "\(text.debugDescription) normalizes to \(normalized.debugDescription), which parses to a different name")
    precondition(again.normalized == normalized, "normalizing is not idempotent for \(text.debugDescription)")
    var parent = name.parent
    while let current = parent {
        precondition(name.isWithin(current), "\(normalized) is not within its parent \(current)")
        parent = current.parent
    }
    return 0
}
