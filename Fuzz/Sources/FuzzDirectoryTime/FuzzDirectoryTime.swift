import Foundation
import Sync

/// Any text as an LDAP time value. A GeneralizedTime that parses formats back to a string
/// that parses to the same second; Windows file times and shadowExpire days parse or are
/// refused, never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDirectoryTime(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)

    if let date = DirectoryTime.parseGeneralizedTime(text), date.timeIntervalSince1970.magnitude < 1e14 {
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
