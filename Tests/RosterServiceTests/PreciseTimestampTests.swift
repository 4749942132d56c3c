import Foundation
import RosterService
import Testing

@Suite("Commit times in the daemon's log: ISO 8601, UTC, microseconds")
struct PreciseTimestampTests {
    @Test func formatsWithSixFractionDigits() {
        // 2026-11-24T21:55:17Z plus 123,456 µs.
        let date = Date(timeIntervalSince1970: 1_795_557_317.123456)
        #expect(PreciseTimestamp.string(date) == "2026-11-24T21:55:17.123456Z")
        #expect(PreciseTimestamp.string(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
    }

    @Test func aFractionThatRoundsUpCarriesIntoTheSecond() {
        let date = Date(timeIntervalSince1970: 1_795_557_317.9999996)
        #expect(PreciseTimestamp.string(date) == "2026-11-24T21:55:18.000000Z")
    }

    @Test(arguments: [0.0, 1_795_557_317.000001, 1_795_557_317.5, 1_795_557_317.999999, 4_102_444_799.25])
    func readsItsOwnFormBackToTheMicrosecond(_ seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        let parsed = try #require(PreciseTimestamp.date(PreciseTimestamp.string(date)))
        #expect(abs(parsed.timeIntervalSince1970 - seconds) < 0.000_001)
    }

    @Test func readsOtherPrecisionsAndRefusesWhatIsNotATimestamp() {
        #expect(PreciseTimestamp.date("2026-11-24T21:55:17Z")?.timeIntervalSince1970 == 1_795_557_317)
        #expect(PreciseTimestamp.date("2026-11-24T21:55:17.5Z")?.timeIntervalSince1970 == 1_795_557_317.5)
        #expect(PreciseTimestamp.date("2026-11-24 21:55:17Z") == nil)
        #expect(PreciseTimestamp.date("2026-11-24T21:55:17.12x4Z") == nil)
        #expect(PreciseTimestamp.date("yesterday") == nil)
    }
}
