import CLDAP
import Foundation

/// Makes directory modifications at a fixed rate from a thread of its own, with libldap's
/// synchronous calls, and notes the wall-clock time each acknowledgement came back: the
/// moment `ldap_modify_ext_s` returns, with no hop to another thread or task between the
/// response and the clock (an async client adds one, late by up to milliseconds on a busy
/// machine, which would make Roster look faster than it is).
struct AcknowledgedWriter {
    let url: String
    let bindDN: String
    let passwordFile: String

    /// Sets `attribute` to `value` on each DN in turn, `interval` apart; returns each DN's
    /// acknowledgement time. `progress` is called every 5 s with the count done.
    func replace(_ attribute: String, with value: String, on dns: [String], every interval: Duration,
                 progress: @escaping @Sendable (Int) -> Void) async throws -> [Date] {
        let (url, bindDN, passwordFile) = (url, bindDN, passwordFile)
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    try Self.run(url: url, bindDN: bindDN, passwordFile: passwordFile, attribute: attribute, value: value,
                                 dns: dns, interval: interval, progress: progress)
                })
            }
            thread.name = "acknowledged-writer"
            thread.start()
        }
    }

    private static func run(url: String, bindDN: String, passwordFile: String, attribute: String, value: String, dns: [String],
                            interval: Duration, progress: @Sendable (Int) -> Void) throws -> [Date] {
        var ld: OpaquePointer?
        guard ldap_initialize(&ld, url) == LDAP_SUCCESS, let ld else { throw WriterError("libldap does not accept \(url)") }
        defer { ldap_unbind_ext_s(ld, nil, nil) }
        _ = cldap_set_int_option(ld, LDAP_OPT_PROTOCOL_VERSION, LDAP_VERSION3)
        var password = Array(try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines).utf8)
        let bound = password.withUnsafeMutableBytes { bytes -> Int32 in
            var credential = cldap_berval(bytes.baseAddress, ber_len_t(bytes.count))
            return ldap_sasl_bind_s(ld, bindDN, nil, &credential, nil, nil, nil)
        }
        guard bound == LDAP_SUCCESS else { throw WriterError("binding as \(bindDN): \(String(cString: ldap_err2string(bound)))") }

        // One modification, rebuilt per DN only in its target: REPLACE attribute := value.
        let name = strdup(attribute)!
        let valueCString = strdup(value)!
        defer {
            free(name)
            free(valueCString)
        }
        var values: [UnsafeMutablePointer<CChar>?] = [valueCString, nil]
        var acknowledged: [Date] = []
        acknowledged.reserveCapacity(dns.count)
        let clock = ContinuousClock()
        var tick = clock.now
        var lastReport = clock.now
        for (index, dn) in dns.enumerated() {
            let wait = tick - clock.now
            if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18) }
            tick += interval
            let rc = values.withUnsafeMutableBufferPointer { values -> Int32 in
                var mod = LDAPMod()
                mod.mod_op = LDAP_MOD_REPLACE
                mod.mod_type = name
                mod.mod_vals.modv_strvals = values.baseAddress
                return withUnsafeMutablePointer(to: &mod) { pointer in
                    var list: [UnsafeMutablePointer<LDAPMod>?] = [pointer, nil]
                    return ldap_modify_ext_s(ld, dn, &list, nil, nil)
                }
            }
            let now = Date()
            guard rc == LDAP_SUCCESS else { throw WriterError("modifying \(dn): \(String(cString: ldap_err2string(rc)))") }
            acknowledged.append(now)
            if clock.now - lastReport >= .seconds(5) {
                lastReport = clock.now
                progress(index + 1)
            }
        }
        return acknowledged
    }
}

struct WriterError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
