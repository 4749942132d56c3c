/// The range option of an attribute returned by Active Directory's ranged retrieval:
/// `member;range=0-1499` (more to come) or `member;range=1500-*` (the last part).
public struct AttributeRange: Equatable, Sendable {
    /// The attribute's name without the range option.
    public let attribute: String
    public let low: Int
    /// The last index in this part; nil when this is the last part (`*`).
    public let high: Int?

    /// Parses an attribute name; nil when it carries no valid range option.
    public init?(attributeName: String) {
        let parts = attributeName.split(separator: ";", omittingEmptySubsequences: false)
        guard parts.count >= 2, let option = parts.last, option.lowercased().hasPrefix("range=") else { return nil }
        let bounds = option.dropFirst("range=".count).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard bounds.count == 2, let low = Int(bounds[0]), low >= 0 else { return nil }
        if bounds[1] == "*" {
            high = nil
        } else {
            guard let high = Int(bounds[1]), high >= low else { return nil }
            self.high = high
        }
        self.low = low
        attribute = parts.dropLast().joined(separator: ";")
    }

    /// The attribute to request for the next part, or nil when this was the last.
    public var nextRequest: String? {
        high.map { "\(attribute);range=\($0 + 1)-*" }
    }
}
