import AccessModel
import ArgumentParser
import Foundation
import Mirror

/// `roster user lock|unlock|deactivate|reactivate`: an admin's own lock or deactivation of one
/// account, kept whatever the directory says (DOMAIN.md rule 8), audited under the admin's
/// name, with the event the application acts on (`user.locked`, `user.deactivated`, …).
extension UserCommand {
    struct Lock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Locks a user locally: the directory cannot clear this lock; `roster user unlock` does.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user code (case-insensitive).") var code: String
        @Option(help: "Why, for the audit log and the user's state (required).") var reason: String

        func run() throws { try LocalStateChange.lock.apply(to: code, reason: reason, options: options) }
    }

    struct Unlock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Removes a local lock (a lock the directory set stays until the directory clears it).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user code (case-insensitive).") var code: String
        @Option(help: "Why, for the audit log.") var reason: String?

        func run() throws { try LocalStateChange.unlock.apply(to: code, reason: reason, options: options) }
    }

    struct Deactivate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deactivates a user locally: the directory cannot reactivate them; `roster user reactivate` does.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user code (case-insensitive).") var code: String
        @Option(help: "Why, for the audit log and the user's state (required).") var reason: String

        func run() throws { try LocalStateChange.deactivate.apply(to: code, reason: reason, options: options) }
    }

    struct Reactivate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Removes a local deactivation (a directory account that is disabled, expired or gone stays inactive).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user code (case-insensitive).") var code: String
        @Option(help: "Why, for the audit log.") var reason: String?

        func run() throws { try LocalStateChange.reactivate.apply(to: code, reason: reason, options: options) }
    }
}

/// One of the four local state changes, and how the command applies and reports it.
enum LocalStateChange {
    case lock, unlock, deactivate, reactivate

    /// The longest reason kept (it is shown to admins and stored in each audit row).
    static let maximumReasonLength = 500

    func apply(to code: String, reason given: String?, options: ConfigOption) throws {
        let reason = given?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let reason {
            guard !reason.isEmpty else {
                printError("--reason is empty: say why, in a few words, for the audit log. Nothing was changed.")
                throw ExitCode(2)
            }
            guard reason.count <= Self.maximumReasonLength, !reason.contains(where: \.isNewline) else {
                printError("--reason must be one line of at most \(Self.maximumReasonLength) characters. Nothing was changed.")
                throw ExitCode(2)
            }
        }
        let mirror = try openMirror(configuredIn: options.config)
        let user = UserCode(code)
        guard let stored = try mirror.user(user) else {
            printError("No user '\(code)' is in the mirror; check the code (`roster users search TEXT`). Nothing was changed.")
            throw ExitCode.failure
        }
        if isAlreadyDone(stored.state) {
            print("\(stored.code.rawValue) is already \(pastTense) locally (\(stored.state)); nothing changed.")
            return
        }
        let actor = Actor.local(LocalAdministrator.name())
        do {
            switch self {
            case .lock, .unlock:
                try mirror.setLocalLock(of: user, locked: self == .lock, reason: reason ?? remainingReason(stored.state), actor: actor)
            case .deactivate, .reactivate:
                try mirror.setLocalDeactivation(of: user, inactive: self == .deactivate, reason: reason ?? remainingReason(stored.state), actor: actor)
            }
        } catch {
            printError("\(stored.code.rawValue) could not be \(pastTense): \(error). Nothing was changed.")
            throw ExitCode.failure
        }
        let now = try mirror.user(user)?.state ?? stored.state
        print("\(stored.code.rawValue) \(pastTense) locally by \(actor.name): now \(now).")
        switch self {
        case .lock, .deactivate:
            print("The application was told (event user.\(self == .lock ? "locked" : "deactivated")); the directory cannot undo this.")
        case .unlock, .reactivate:
            if !now.isActive || now.isLocked { print("The account stays \(now.isLocked ? "locked" : "inactive"): the directory's own state holds.") }
        }
    }

    private var pastTense: String {
        switch self {
        case .lock: "locked"
        case .unlock: "unlocked"
        case .deactivate: "deactivated"
        case .reactivate: "reactivated"
        }
    }

    private func isAlreadyDone(_ state: AccountState) -> Bool {
        switch self {
        case .lock: state.lockedLocally
        case .unlock: !state.lockedLocally
        case .deactivate: state.inactiveLocally
        case .reactivate: !state.inactiveLocally
        }
    }

    /// The state's reason once this change is made without one: what still holds the account,
    /// if anything (the reason the local change gave does not outlive it).
    private func remainingReason(_ state: AccountState) -> String? {
        var next = state
        switch self {
        case .lock, .deactivate: return nil
        case .unlock: next.lockedLocally = false
        case .reactivate: next.inactiveLocally = false
        }
        next.reason = nil
        return next.isLocked || !next.isActive ? "still \(next)" : nil
    }
}

/// Who runs a local command, as the audit log names them.
enum LocalAdministrator {
    /// The login name; through `sudo`, the admin who ran sudo and the account it ran as
    /// (`alice via sudo as roster`).
    static func name(environment: [String: String] = ProcessInfo.processInfo.environment, uid: uid_t = getuid()) -> String {
        let account = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "uid \(uid)"
        if let admin = environment["SUDO_USER"], !admin.isEmpty, admin != account {
            return "\(admin) via sudo as \(account)"
        }
        return account
    }
}
