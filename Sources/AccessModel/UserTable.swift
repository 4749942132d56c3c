/// A snapshot's users by code: the users in one contiguous array, found through an index of
/// positions.
///
/// A `[UserCode: User]` dictionary keeps every user inline in its buckets, and at its load factor
/// it has between 1.33 and 2.67 buckets per user: 61 MB for 100k users, two thirds of it empty.
/// Here the empty buckets hold only a code and a position (the users take 21 MB, the index 7).
/// It reads and writes like such a dictionary; iteration is in no particular order.
public struct UserTable: Sendable {
    private var users: [User] = []
    /// The key each user was stored under, at the user's position (`users[i].code` may spell it
    /// otherwise: codes compare without case).
    private var codes: [UserCode] = []
    private var positions: [UserCode: Int] = [:]

    public init() {}

    /// A table of `users`; of two with the same code, the last is kept.
    public init(_ users: some Sequence<User>) {
        for user in users { self[user.code] = user }
    }

    public var count: Int { users.count }
    public var isEmpty: Bool { users.isEmpty }

    /// The users, in no particular order.
    public var values: [User] { users }

    /// The codes the users are stored under, in the order of ``values``.
    public var keys: [UserCode] { codes }

    public mutating func reserveCapacity(_ capacity: Int) {
        users.reserveCapacity(capacity)
        codes.reserveCapacity(capacity)
        positions.reserveCapacity(capacity)
    }

    /// The user stored under `code`; setting nil removes it.
    public subscript(code: UserCode) -> User? {
        get { positions[code].map { users[$0] } }
        set {
            guard let newValue else {
                removeValue(forKey: code)
                return
            }
            if let position = positions[code] {
                users[position] = newValue
            } else {
                positions[code] = users.count
                users.append(newValue)
                codes.append(code)
            }
        }
    }

    /// Removes the user stored under `code` and returns it (nil if there was none). The last
    /// user takes the removed one's position.
    @discardableResult
    public mutating func removeValue(forKey code: UserCode) -> User? {
        guard let position = positions.removeValue(forKey: code) else { return nil }
        let last = users.count - 1
        if position != last {
            users.swapAt(position, last)
            codes.swapAt(position, last)
            positions[codes[position]] = position
        }
        codes.removeLast()
        return users.removeLast()
    }
}

extension UserTable: Sequence {
    public struct Iterator: IteratorProtocol {
        fileprivate let table: UserTable
        fileprivate var position = 0

        public mutating func next() -> (key: UserCode, value: User)? {
            guard position < table.users.count else { return nil }
            defer { position += 1 }
            return (table.codes[position], table.users[position])
        }
    }

    public func makeIterator() -> Iterator { Iterator(table: self) }
    public var underestimatedCount: Int { users.count }
}

extension UserTable: Hashable {
    /// Equal when both hold the same users under the same codes, whatever their order.
    public static func == (lhs: UserTable, rhs: UserTable) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for position in lhs.users.indices {
            guard let other = rhs.positions[lhs.codes[position]], rhs.users[other] == lhs.users[position] else { return false }
        }
        return true
    }

    /// Order-independent: the users' hashes are summed.
    public func hash(into hasher: inout Hasher) {
        var sum = 0
        for position in users.indices {
            var one = Hasher()
            one.combine(codes[position])
            one.combine(users[position])
            sum &+= one.finalize()
        }
        hasher.combine(users.count)
        hasher.combine(sum)
    }
}

extension UserTable: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (UserCode, User)...) {
        for (code, user) in elements { self[code] = user }
    }
}
