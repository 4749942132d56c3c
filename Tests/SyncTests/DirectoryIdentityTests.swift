import LDAPKit
import RosterConfig
import Sync
import Testing

@Suite("A directory entry's lasting identity, per flavor")
struct DirectoryIdentityTests {
    let uuid = EntryUUID("13e3de8c-e8c8-11f1-a189-a621707a9b00")!

    @Test("OpenLDAP: entryUUID, taken as the server prints it")
    func openldap() {
        let identity = DirectoryIdentity(flavor: .openldap)
        let entry = LDAPEntry(dn: "uid=a,dc=x", attributes: [("entryUUID", [LDAPValue(uuid.description)])])
        #expect(identity.attribute == "entryUUID")
        #expect(identity.id(of: entry) == uuid)
        #expect(identity.text(of: entry) == uuid.description)
        #expect(identity.filter(uuid) == "(entryUUID=13e3de8c-e8c8-11f1-a189-a621707a9b00)")
        #expect(identity.id(of: LDAPEntry(dn: "uid=a,dc=x")) == nil)
    }

    @Test("389-ds: nsUniqueId (its sync UUID), not its entryUUID plugin's other value")
    func ds389() {
        let identity = DirectoryIdentity(flavor: .ds389)
        let entry = LDAPEntry(dn: "uid=a,dc=x", attributes: [("entryUUID", [LDAPValue("ebf83d2e-dd51-46f1-a841-e8ba114909ca")]),
                                                             ("nsUniqueId", [LDAPValue("13e3de8c-e8c811f1-a189a621-707a9b00")])])
        #expect(identity.attribute == "nsUniqueId")
        #expect(identity.id(of: entry) == uuid)
        #expect(identity.text(of: entry) == uuid.description)
        #expect(identity.filter(uuid) == "(nsUniqueId=13e3de8c-e8c811f1-a189a621-707a9b00)")
        // An entry sent without its operational attributes has no identity to map it by.
        #expect(identity.id(of: LDAPEntry(dn: "uid=a,dc=x", attributes: [("entryUUID", [LDAPValue(uuid.description)])])) == nil)
    }

    @Test("Active Directory: objectGUID's bytes; a filter escapes each byte")
    func activeDirectory() {
        let identity = DirectoryIdentity(flavor: .activedirectory)
        let entry = LDAPEntry(dn: "CN=a,DC=x", attributes: [("objectGUID", [LDAPValue(uuid.bytes)])])
        #expect(identity.attribute == "objectGUID")
        #expect(identity.id(of: entry) == uuid)
        #expect(identity.text(of: entry) == uuid.description)
        #expect(identity.filter(uuid) == "(objectGUID=\\13\\e3\\de\\8c\\e8\\c8\\11\\f1\\a1\\89\\a6\\21\\70\\7a\\9b\\00)")
    }
}
