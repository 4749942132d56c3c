import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A wall-clock time as ISO 8601 in UTC with microseconds, `2026-11-24T21:55:17.123456Z`:
/// the mirror's timestamps stop at milliseconds, too coarse to trace a change that takes one.
public enum PreciseTimestamp {
    public static func string(_ date: Date) -> String {
        let since1970 = date.timeIntervalSince1970
        var whole = since1970.rounded(.down)
        var micros = Int(((since1970 - whole) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            whole += 1
            micros -= 1_000_000
        }
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func padded(_ value: Int32, _ width: Int) -> String { padded(Int(value), width) }
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return padded(parts.tm_year + 1900, 4) + "-" + padded(parts.tm_mon + 1, 2) + "-" + padded(parts.tm_mday, 2)
            + "T" + padded(parts.tm_hour, 2) + ":" + padded(parts.tm_min, 2) + ":" + padded(parts.tm_sec, 2)
            + "." + padded(micros, 6) + "Z"
    }

    /// Reads ``string(_:)``'s form back (any number of fraction digits, or none); nil otherwise.
    public static func date(_ text: some StringProtocol) -> Date? {
        let text = String(text)
        guard text.hasSuffix("Z"), text.count >= 20 else { return nil }
        let body = text.dropLast()
        let (secondsPart, fraction) = body.firstIndex(of: ".").map { (body[..<$0], body[body.index(after: $0)...]) } ?? (body[...], ""[...])
        let fields = secondsPart.split(whereSeparator: { "-T:".contains($0) }).map { Int($0) }
        guard fields.count == 6, fields.allSatisfy({ $0 != nil }), fraction.allSatisfy(\.isNumber) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(fields[0]! - 1900)
        parts.tm_mon = Int32(fields[1]! - 1)
        parts.tm_mday = Int32(fields[2]!)
        parts.tm_hour = Int32(fields[3]!)
        parts.tm_min = Int32(fields[4]!)
        parts.tm_sec = Int32(fields[5]!)
        let seconds = timegm(&parts)
        let fractionValue = fraction.isEmpty ? 0 : (Double("0." + fraction) ?? 0)
        return Date(timeIntervalSince1970: Double(seconds) + fractionValue)
    }
}
