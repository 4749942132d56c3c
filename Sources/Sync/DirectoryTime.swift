import Foundation

/// Time values as directories write them.
public enum DirectoryTime {
    /// Parses an LDAP GeneralizedTime (RFC 4517): `YYYYMMDDHH[MM[SS]][.fraction](Z|±HHMM)`,
    /// e.g. `20261123164942Z` or `20261123164942.292928Z`. Nil when malformed.
    public static func parseGeneralizedTime(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var position = 0
        func digits(_ count: Int) -> Int? {
            guard position + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[position..<(position + count)] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            position += count
            return value
        }
        func peekDigit() -> Bool { position < bytes.count && bytes[position] >= 48 && bytes[position] <= 57 }
        guard let year = digits(4), let month = digits(2), let day = digits(2), let hour = digits(2) else { return nil }
        var minute = 0, second = 0
        if peekDigit() {
            guard let value = digits(2) else { return nil }
            minute = value
            if peekDigit() {
                guard let value = digits(2) else { return nil }
                second = value
            }
        }
        var fraction = 0.0
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") || bytes[position] == UInt8(ascii: ",") {
            position += 1
            var scale = 0.1
            var any = false
            while peekDigit() {
                fraction += Double(bytes[position] - 48) * scale
                scale /= 10
                position += 1
                any = true
            }
            guard any else { return nil }
        }
        guard position < bytes.count else { return nil }
        var offsetSeconds = 0
        switch bytes[position] {
        case UInt8(ascii: "Z"):
            position += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = bytes[position] == UInt8(ascii: "-") ? -1 : 1
            position += 1
            guard let hours = digits(2), hours < 24 else { return nil }
            var minutes = 0
            if peekDigit() {
                guard let value = digits(2), value < 60 else { return nil }
                minutes = value
            }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        default:
            return nil
        }
        guard position == bytes.count else { return nil }
        guard (1...12).contains(month), (1...daysIn(month, year)).contains(day), hour < 24, minute < 60, second < 61 else {
            return nil
        }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = Double(days) * 86_400 + Double(hour * 3600 + minute * 60 + second) + fraction - Double(offsetSeconds)
        return Date(timeIntervalSince1970: seconds)
    }

    /// When the newest change a sync cookie covers was made, from its change sequence numbers:
    /// OpenLDAP's `rid=000,csn=20261124221413.752345Z#000000#000#000000` (several CSNs, one per
    /// server id, separated by `;`). The time a CSN carries is the directory server's clock, to
    /// the microsecond. Nil when the cookie carries no CSN (other servers' cookies are opaque).
    public static func newestChange(inCookie cookie: [UInt8]) -> Date? {
        guard let text = String(validating: cookie, as: UTF8.self) else { return nil }
        var newest: Date?
        for field in text.split(separator: ",") where field.hasPrefix("csn=") {
            for csn in field.dropFirst(4).split(separator: ";") {
                guard let time = csn.split(separator: "#", maxSplits: 1).first, let date = parseGeneralizedTime(String(time)) else { continue }
                if newest.map({ date > $0 }) ?? true { newest = date }
            }
        }
        return newest
    }

    /// A date as GeneralizedTime in UTC, to second precision (`20261123164942Z`).
    public static func generalizedTime(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        var days = seconds / 86_400
        var rest = seconds % 86_400
        if rest < 0 { rest += 86_400; days -= 1 }
        // Civil date from days since 1970-01-01 (proleptic Gregorian).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        // GeneralizedTime years have four digits (ppolicy's permanent lock is year 0000).
        let yearText = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
        return "\(yearText)\(two(month))\(two(day))\(two(rest / 3600))\(two(rest % 3600 / 60))\(two(rest % 60))Z"
    }

    /// ppolicy's "locked until an administrator unlocks" value of `pwdAccountLockedTime`.
    public static let permanentLockValue = "000001010000Z"

    /// Active Directory's `accountExpires` / `lockoutTime`: 100-nanosecond intervals since
    /// 1601-01-01 UTC. Nil for 0 and 0x7FFFFFFFFFFFFFFF ("never") and for malformed text.
    public static func parseWindowsFileTime(_ text: String) -> Date? {
        guard let value = Int64(text.trimmingCharacters(in: .whitespaces)), value > 0, value != Int64.max else { return nil }
        let secondsFrom1601 = Double(value) / 10_000_000
        return Date(timeIntervalSince1970: secondsFrom1601 - 11_644_473_600)
    }

    /// RFC 2307 `shadowExpire`: days since 1970-01-01; the account expires at the start of
    /// that day. Nil for -1 or malformed text.
    public static func parseShadowExpire(_ text: String) -> Date? {
        guard let days = Int(text.trimmingCharacters(in: .whitespaces)), days >= 0 else { return nil }
        return Date(timeIntervalSince1970: Double(days) * 86_400)
    }

    private static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    private static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (may be negative).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = (month + 9) % 12
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
