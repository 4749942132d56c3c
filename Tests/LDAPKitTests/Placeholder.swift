import Testing
@testable import LDAPKit
