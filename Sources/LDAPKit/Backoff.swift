/// Capped exponential backoff with jitter, for reconnecting long-lived streams.
/// A pure value: `nextDelay` is deterministic for a given random number generator.
public struct Backoff: Sendable, Equatable {
    /// The first delay.
    public var initial: Duration
    /// No delay is longer than this.
    public var maximum: Duration
    /// Each delay is this many times the previous one (before jitter).
    public var multiplier: Double
    /// Delays vary randomly by up to this share, so many clients do not retry in step.
    public var jitter: Double
    /// Failures since the last reset.
    public private(set) var attempts = 0

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(60),
                multiplier: Double = 2, jitter: Double = 0.2) {
        precondition(initial > .zero && maximum >= initial && multiplier >= 1 && (0...1).contains(jitter))
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay before the next attempt; counts the attempt.
    public mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration {
        let base = min(seconds(initial) * pow(multiplier, attempts), seconds(maximum))
        attempts += 1
        let factor = jitter == 0 ? 1 : Double.random(in: (1 - jitter)...(1 + jitter), using: &generator)
        return .milliseconds(Int64(min(base * factor, seconds(maximum)) * 1000))
    }

    public mutating func nextDelay() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return nextDelay(using: &generator)
    }

    /// Back to the first delay, after a success.
    public mutating func reset() { attempts = 0 }

    private func seconds(_ duration: Duration) -> Double {
        let (whole, fraction) = duration.components
        return Double(whole) + Double(fraction) / 1e18
    }

    private func pow(_ base: Double, _ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<min(exponent, 64) { result *= base }
        return result
    }
}
