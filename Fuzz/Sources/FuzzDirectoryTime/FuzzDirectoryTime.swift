import Foundation
import Sync

/// Any text as an LDAP time value. A GeneralizedTime that parses (within years 0000-9999)
/// formats back to a string that parses to the same second; Windows file times and shadowExpire days parse or are
/// refused, never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDirectoryTime(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)

    // GeneralizedTime holds years 0000-9999: a time zone offset can move a parsed value
    // just outside them (0000-01-01T00:00+01 is in year -1), which cannot be written back.
    let representable = -62_167_219_200.0 ..< 253_402_300_800.0
    if let date = DirectoryTime.parseGeneralizedTime(text), representable.contains(date.timeIntervalSince1970) {
        let formatted = DirectoryTime.generalizedTime(date)
        guard let again = DirectoryTime.parseGeneralizedTime(formatted) else {
            preconditionFailure("\(text.debugDescription) parses to \(date), formatted \(formatted.debugDescription), which does not parse")
        }
        precondition(again.timeIntervalSince1970 == date.timeIntervalSince1970.rounded(.down),
                     "\(text.debugDescription): \(date.timeIntervalSince1970) -> \(formatted) -> \(again.timeIntervalSince1970)")
    }
    _ = DirectoryTime.parseWindowsFileTime(text)
    _ = DirectoryTime.parseShadowExpire(text)
    return 0
}
