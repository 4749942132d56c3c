import LDAPKit
