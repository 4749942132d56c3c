import AccessModel

/// Everything IT configures once, as read from `roster.yaml`: how to reach the directory,
/// how its users and groups map into the clinic model, the safety limits and schedules.
/// Built only by `ConfigurationLoader`, which checks every value; the rest of Roster can
/// trust it.
public struct RosterConfiguration: Sendable, Equatable {
    public var directory: Directory
    public var users: Users
    public var providers: Providers
    public var healthCenters: [HealthCenterConfig]
    public var pools: [PoolConfig]
    public var groups: Groups
    public var roles: [RoleConfig]
    public var safety: Safety
    public var schedule: Schedule
    public var mirror: MirrorConfig
    public var http: HTTP

    public init(directory: Directory, users: Users, providers: Providers, healthCenters: [HealthCenterConfig],
                pools: [PoolConfig], groups: Groups, roles: [RoleConfig], safety: Safety, schedule: Schedule,
                mirror: MirrorConfig, http: HTTP) {
        self.directory = directory
        self.users = users
        self.providers = providers
        self.healthCenters = healthCenters
        self.pools = pools
        self.groups = groups
        self.roles = roles
        self.safety = safety
        self.schedule = schedule
        self.mirror = mirror
        self.http = http
    }

    /// The kind of directory server, which decides how account states are read.
    public enum Flavor: String, Sendable, Equatable, CaseIterable {
        case openldap, ds389 = "389ds", activedirectory, generic
    }

    /// `directory:`
    public struct Directory: Sendable, Equatable {
        /// A short name for this directory (the key of its sync state), e.g. `main`.
        public var name: String
        public var urls: [String]
        public var flavor: Flavor
        /// `tls.mode`: `tls` (ldaps:// or StartTLS on ldap://) or `plaintext` (needs
        /// `allow_plaintext: true`).
        public var plaintext: Bool
        public var caFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        public var verifyServer: Bool
        public var bind: Bind
        public var baseDN: String
        public var pageSize: Int
        public var connectTimeoutSeconds: Double
        public var operationTimeoutSeconds: Double
        /// OpenLDAP: the DN of the password policy (ppolicy) that applies to users without a
        /// `pwdPolicySubentry`, when the directory has several; its lockout duration sets when a
        /// lockout ends. With one policy that one is taken.
        public var defaultPasswordPolicy: String?

        public init(name: String = "main", urls: [String], flavor: Flavor = .openldap, plaintext: Bool = false,
                    caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verifyServer: Bool = true,
                    bind: Bind = .anonymous, baseDN: String, pageSize: Int = 1000,
                    connectTimeoutSeconds: Double = 5, operationTimeoutSeconds: Double = 30, defaultPasswordPolicy: String? = nil) {
            self.name = name
            self.urls = urls
            self.flavor = flavor
            self.plaintext = plaintext
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyServer = verifyServer
            self.bind = bind
            self.baseDN = baseDN
            self.pageSize = pageSize
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.operationTimeoutSeconds = operationTimeoutSeconds
            self.defaultPasswordPolicy = defaultPasswordPolicy
        }
    }

    /// `directory.bind:`
    public enum Bind: Sendable, Equatable {
        case anonymous
        case simple(dn: String, passwordFile: String)
        case saslExternal
    }

    /// `users:`
    public struct Users: Sendable, Equatable {
        /// Where users live (defaults to the directory's base DN).
        public var base: String
        public var filter: String
        /// Directory attribute names for each user field.
        public var attributes: UserAttributes
        public var defaultAutoLogoutMinutes: Int
        /// Health centers for users whose health-center attribute is empty.
        public var defaultHealthCenters: [HealthCenterID]
        /// `users.flags:` clinic flag name → the directory attribute holding TRUE/FALSE.
        public var flags: [String: String]
        /// Members of these directory groups (DNs) are super administrators.
        public var superAdministratorGroups: [String]
        /// Emergency accounts: never changed by a bulk plan, every change audited loudly.
        public var breakGlassUserCodes: [String]

        public init(base: String, filter: String = "(objectClass=inetOrgPerson)", attributes: UserAttributes = UserAttributes(),
                    defaultAutoLogoutMinutes: Int = 15, defaultHealthCenters: [HealthCenterID] = [], flags: [String: String] = [:],
                    superAdministratorGroups: [String] = [], breakGlassUserCodes: [String] = []) {
            self.base = base
            self.filter = filter
            self.attributes = attributes
            self.defaultAutoLogoutMinutes = defaultAutoLogoutMinutes
            self.defaultHealthCenters = defaultHealthCenters
            self.flags = flags
            self.superAdministratorGroups = superAdministratorGroups
            self.breakGlassUserCodes = breakGlassUserCodes
        }
    }

    /// `users.attributes:` (nil: the field is not read).
    public struct UserAttributes: Sendable, Equatable {
        public var userCode: String
        public var firstName: String?
        public var lastName: String?
        public var displayName: String?
        public var email: String?
        public var title: String?
        public var healthCenters: String?
        public var autoLogoutMinutes: String?
        public var defaultWorkflowView: String?
        public var defaultPatientView: String?
        public var defaultDocumentTab: String?

        public init(userCode: String = "uid", firstName: String? = "givenName", lastName: String? = "sn",
                    displayName: String? = "displayName", email: String? = "mail", title: String? = "title",
                    healthCenters: String? = nil, autoLogoutMinutes: String? = nil, defaultWorkflowView: String? = nil,
                    defaultPatientView: String? = nil, defaultDocumentTab: String? = nil) {
            self.userCode = userCode
            self.firstName = firstName
            self.lastName = lastName
            self.displayName = displayName
            self.email = email
            self.title = title
            self.healthCenters = healthCenters
            self.autoLogoutMinutes = autoLogoutMinutes
            self.defaultWorkflowView = defaultWorkflowView
            self.defaultPatientView = defaultPatientView
            self.defaultDocumentTab = defaultDocumentTab
        }
    }

    /// `providers:` which user entries are providers (clinicians whose patients groups grant).
    public struct Providers: Sendable, Equatable {
        /// An LDAP filter; entries among the users that match it are providers. Nil: none.
        public var filter: String?
        /// The attribute naming the provider's health center (defaults to the users' one).
        public var healthCenterAttribute: String?
        /// Whether each new provider gets a provider group of their own (DOMAIN rule 6).
        public var ownGroup: OwnGroup?

        public init(filter: String? = nil, healthCenterAttribute: String? = nil, ownGroup: OwnGroup? = nil) {
            self.filter = filter
            self.healthCenterAttribute = healthCenterAttribute
            self.ownGroup = ownGroup
        }
    }

    /// `providers.own_group:` the group each new provider gets.
    public struct OwnGroup: Sendable, Equatable {
        /// Care venues of the group; empty means every care venue of the provider's health center.
        public var careVenues: [CareVenueID]
        public var modules: [Module: ModuleSetting]

        public init(careVenues: [CareVenueID] = [], modules: [Module: ModuleSetting] = [.providersOffice: ModuleSetting()]) {
            self.careVenues = careVenues
            self.modules = modules
        }
    }

    /// A module's setting in a group: privacy for the module, default privilege, and
    /// per-provider overrides (keyed by provider user code).
    public struct ModuleSetting: Sendable, Equatable {
        public var privacy: PrivacyLevel
        public var privilege: Privilege
        public var overrides: [String: Override]

        public init(privacy: PrivacyLevel = .toggleDefaultOff, privilege: Privilege = .fullAccess, overrides: [String: Override] = [:]) {
            self.privacy = privacy
            self.privilege = privilege
            self.overrides = overrides
        }
    }

    /// A per-provider override inside a module setting (privacy only for forced levels).
    public struct Override: Sendable, Equatable {
        public var privilege: Privilege?
        public var privacy: PrivacyLevel?

        public init(privilege: Privilege? = nil, privacy: PrivacyLevel? = nil) {
            self.privilege = privilege
            self.privacy = privacy
        }
    }

    /// `health_centers[]:`
    public struct HealthCenterConfig: Sendable, Equatable {
        public var id: HealthCenterID
        public var name: String
        public var careVenues: [CareVenueConfig]

        public init(id: HealthCenterID, name: String, careVenues: [CareVenueConfig]) {
            self.id = id
            self.name = name
            self.careVenues = careVenues
        }
    }

    public struct CareVenueConfig: Sendable, Equatable {
        public var id: CareVenueID
        public var name: String

        public init(id: CareVenueID, name: String) {
            self.id = id
            self.name = name
        }
    }

    /// `pools[]:` a named set of providers: the members of a directory group.
    public struct PoolConfig: Sendable, Equatable {
        public var id: PoolID
        public var name: String
        public var healthCenter: HealthCenterID
        public var visibility: PoolVisibility
        /// DN of the directory group whose members are the pool's providers.
        public var providersGroup: String

        public init(id: PoolID, name: String, healthCenter: HealthCenterID, visibility: PoolVisibility, providersGroup: String) {
            self.id = id
            self.name = name
            self.healthCenter = healthCenter
            self.visibility = visibility
            self.providersGroup = providersGroup
        }
    }

    /// `groups:` where directory groups live and how they map to clinic groups.
    public struct Groups: Sendable, Equatable {
        public var base: String
        public var filter: String
        /// The attribute listing member DNs.
        public var memberAttribute: String
        /// Explicit mappings: one directory group to one clinic group.
        public var mappings: [GroupMapping]
        /// Pattern rules: many directory groups at once.
        public var patternRules: [PatternRule]
        /// Whether a group's members include the members of groups nested in it (at any
        /// depth). Default: on for Active Directory, off otherwise.
        public var nested: Bool

        public init(base: String, filter: String = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))",
                    memberAttribute: String = "member", mappings: [GroupMapping] = [], patternRules: [PatternRule] = [],
                    nested: Bool = false) {
            self.base = base
            self.filter = filter
            self.memberAttribute = memberAttribute
            self.mappings = mappings
            self.patternRules = patternRules
            self.nested = nested
        }
    }

    /// Where a clinic group's providers (or pools) come from.
    public enum ProviderSource: Sendable, Equatable {
        /// Every provider of the group's health center.
        case allInHealthCenter
        /// The providers among the members of a directory group (DN).
        case membersOf(String)
        /// Named providers (user codes).
        case listed([String])
        /// Named pools (pool groups only).
        case pools([PoolID])
    }

    /// The clinic group a mapping produces (explicit mapping, or a pattern rule's template
    /// with `{capture}` placeholders already resolved).
    public struct ClinicGroupSpec: Sendable, Equatable {
        public var name: String
        public var kind: GroupKind
        public var healthCenter: String
        public var careVenues: [String]
        public var modules: [Module: ModuleSetting]
        public var providers: ProviderSource
        public var schedulingAbility: Bool
        public var autoAddNewProviders: Bool

        public init(name: String, kind: GroupKind, healthCenter: String, careVenues: [String], modules: [Module: ModuleSetting],
                    providers: ProviderSource, schedulingAbility: Bool = true, autoAddNewProviders: Bool = false) {
            self.name = name
            self.kind = kind
            self.healthCenter = healthCenter
            self.careVenues = careVenues
            self.modules = modules
            self.providers = providers
            self.schedulingAbility = schedulingAbility
            self.autoAddNewProviders = autoAddNewProviders
        }
    }

    /// `groups.mappings[]:`
    public struct GroupMapping: Sendable, Equatable {
        /// The directory group's DN; its members are the clinic group's users.
        public var directoryGroup: String
        public var group: ClinicGroupSpec

        public init(directoryGroup: String, group: ClinicGroupSpec) {
            self.directoryGroup = directoryGroup
            self.group = group
        }
    }

    /// `groups.pattern_rules[]:` every directory group whose `cn` (or whole DN) matches
    /// `pattern` maps to a clinic group; `{name}` in the template's strings is replaced by
    /// the named capture `(?<name>...)` of the match.
    public struct PatternRule: Sendable, Equatable {
        public enum Target: String, Sendable, Equatable { case cn, dn }
        public var target: Target
        /// A regular expression with named captures, matched against the whole cn or DN
        /// (case-insensitively).
        public var pattern: String
        public var template: ClinicGroupSpec

        public init(target: Target = .cn, pattern: String, template: ClinicGroupSpec) {
            self.target = target
            self.pattern = pattern
            self.template = template
        }
    }

    /// The base role Roster gives every user when no role is `base: true`: User Preferences,
    /// which every group grants too (DOMAIN: every active user holds the base role).
    public static let builtInBaseRole = RoleConfig(name: Role.base.id, modules: Role.base.modules, directoryGroup: nil, isBase: true)

    /// Every role of the model: the configured ones, and the built-in base role when none is base.
    public var modelRoles: [RoleConfig] { roles.contains(where: \.isBase) ? roles : roles + [Self.builtInBaseRole] }

    /// `roles[]:` a role and the directory group whose members hold it.
    public struct RoleConfig: Sendable, Equatable {
        public var name: RoleName
        public var modules: [Module: Privilege]
        public var directoryGroup: String?
        /// `base: true`: every user holds the role, unassigned (at most one role; no directory group).
        public var isBase: Bool
        /// `all_access: true`: the role's holders are super administrators (no modules listed).
        public var isAllAccess: Bool

        public init(name: RoleName, modules: [Module: Privilege], directoryGroup: String?, isBase: Bool = false,
                    isAllAccess: Bool = false) {
            self.name = name
            self.modules = modules
            self.directoryGroup = directoryGroup
            self.isBase = isBase
            self.isAllAccess = isAllAccess
        }
    }

    /// `safety:` limits on what one reconcile may revoke before it needs `--force`.
    public struct Safety: Sendable, Equatable {
        public var maxDeactivations: Int
        public var maxDeactivationPercent: Double

        public init(maxDeactivations: Int = 50, maxDeactivationPercent: Double = 5) {
            self.maxDeactivations = maxDeactivations
            self.maxDeactivationPercent = maxDeactivationPercent
        }
    }

    /// `schedule:`
    public struct Schedule: Sendable, Equatable {
        public var reconcileIntervalMinutes: Double
        /// Seconds between polls for directories without a change stream.
        public var pollIntervalSeconds: Double
        /// Seconds between Active Directory DirSync polls (change notifications wake the
        /// poll early where the server sends them promptly).
        public var dirSyncIntervalSeconds: Double
        /// Whether Active Directory change notifications wake the DirSync poll early.
        public var changeNotifications: Bool
        /// `/readyz` fails when the directory has been unreachable this long.
        public var stalenessLimitSeconds: Double
        /// Every this many scheduled reconciles, one reads every entry in full; the others read
        /// change markers and only the entries whose marker moved (1: always in full).
        public var fullReconcileEvery: Int

        public init(reconcileIntervalMinutes: Double = 15, pollIntervalSeconds: Double = 30, stalenessLimitSeconds: Double = 300,
                    dirSyncIntervalSeconds: Double = 0.5, changeNotifications: Bool = true, fullReconcileEvery: Int = 24) {
            self.fullReconcileEvery = fullReconcileEvery
            self.changeNotifications = changeNotifications
            self.reconcileIntervalMinutes = reconcileIntervalMinutes
            self.pollIntervalSeconds = pollIntervalSeconds
            self.dirSyncIntervalSeconds = dirSyncIntervalSeconds
            self.stalenessLimitSeconds = stalenessLimitSeconds
        }
    }

    /// `mirror:`
    public struct MirrorConfig: Sendable, Equatable {
        public var path: String
        /// The clinic application's group, allowed to read the mirror.
        public var readerGroup: String?

        public init(path: String = "/var/lib/roster/roster.sqlite", readerGroup: String? = nil) {
            self.path = path
            self.readerGroup = readerGroup
        }
    }

    /// `http:`
    public struct HTTP: Sendable, Equatable {
        public var address: String
        public var port: Int
        /// Required when `address` is not a loopback address.
        public var tokenFile: String?
        /// `http.tls.certificate_file`: PEM certificate chain; with `tlsKeyFile`, the
        /// endpoint serves HTTPS.
        public var tlsCertificateFile: String?
        /// `http.tls.key_file`: PEM private key of that certificate.
        public var tlsKeyFile: String?

        public init(address: String = "127.0.0.1", port: Int = 8471, tokenFile: String? = nil,
                    tlsCertificateFile: String? = nil, tlsKeyFile: String? = nil) {
            self.address = address
            self.port = port
            self.tokenFile = tokenFile
            self.tlsCertificateFile = tlsCertificateFile
            self.tlsKeyFile = tlsKeyFile
        }
    }
}
