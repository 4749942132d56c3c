import Foundation
@testable import LDAPKit
import SlapdHarness
import Sync
import Testing

@Suite("Connections, binds and TLS against a real slapd")
struct ConnectionTests {
    @Test("A connection opened from a thread of lowered priority (a daemon's reconcile) runs libldap at a lowered priority; one opened from a normal thread at the process's own")
    func connectionRunsAtItsOpenersPriority() async throws {
        let suffix = "dc=priority,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix))
        defer { server.shutdown() }
        let normal = ThreadPriority.processNiceness
        try #require(normal < 19, "the test process already runs at nice 19")
        let executor = ThreadExecutor(name: "roster-test-low", threads: 1, niceness: min(19, normal + 10))
        let lowered = try await withTaskExecutorPreference(executor) { try await LDAPConnection.connect(server.adminConfiguration()) }
        let plain = try await LDAPConnection.connect(server.adminConfiguration())
        #expect(try await lowered.handle.perform { _ in ThreadPriority.niceness } > normal)
        #expect(try await plain.handle.perform { _ in ThreadPriority.niceness } == normal)
        await lowered.close()
        await plain.close()
    }

    @Test("A wrong password fails the bind with invalidCredentials, naming the DN")
    func wrongPassword() async throws {
        let suffix = "dc=bind,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.person("alice", suffix: suffix))
        defer { server.shutdown() }
        let wrong = server.directory.appendingPathComponent("wrong.password").path
        try "not-the-password\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let configuration = LDAPConfiguration(urls: [server.url], security: .plaintext,
                                              credentials: .simple(bindDN: server.adminDN, passwordFile: wrong))
        let error = await #expect(throws: LDAPError.self) { _ = try await LDAPConnection.connect(configuration) }
        #expect(error?.code == .invalidCredentials)
        #expect(error?.operation == .bind)
        #expect(error?.description.contains(server.adminDN) == true)
        #expect(error?.description.contains("not-the-password") == false)

        // The right password (with its trailing newline stripped) binds; whoami confirms.
        let user = server.directory.appendingPathComponent("alice.password").path
        try "pw-alice\n".write(toFile: user, atomically: true, encoding: .utf8)
        let alice = LDAPConfiguration(urls: [server.url], security: .plaintext,
                                      credentials: .simple(bindDN: TestDirectory.dn("alice", suffix: suffix), passwordFile: user))
        let connection = try await LDAPConnection.connect(alice)
        #expect(try await connection.whoAmI() == "dn:\(TestDirectory.dn("alice", suffix: suffix))")
        await connection.close()
    }

    @Test("A missing, empty or unreadable password file is an error naming the file, before any bind")
    func badPasswordFile() async throws {
        let suffix = "dc=pwfile,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix))
        defer { server.shutdown() }
        let empty = server.directory.appendingPathComponent("empty.password").path
        try "\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let missing = server.directory.appendingPathComponent("missing.password").path
        for (file, words) in [(missing, "cannot be read"), (empty, "is empty")] {
            let configuration = LDAPConfiguration(urls: [server.url], security: .plaintext,
                                                  credentials: .simple(bindDN: server.adminDN, passwordFile: file))
            let error = await #expect(throws: LDAPError.self) { _ = try await LDAPConnection.connect(configuration) }
            #expect(error?.description.contains(file) == true)
            #expect(error?.description.contains(words) == true, "\(error?.description ?? "")")
        }
    }

    @Test("An unreachable server fails fast with a connection error")
    func unreachable() async throws {
        let port = try Tools.freePort()
        let configuration = LDAPConfiguration(urls: ["ldap://127.0.0.1:\(port)"], security: .plaintext,
                                              connectTimeout: .seconds(2))
        let clock = ContinuousClock()
        let started = clock.now
        let error = await #expect(throws: LDAPError.self) { _ = try await LDAPConnection.connect(configuration) }
        #expect(error?.code.isConnectionFailure == true)
        #expect(error?.operation == .connect)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        #expect(clock.now - started < .seconds(30))
    }

    @Test("Plaintext is refused for ldaps:// and TLS is the default")
    func plaintextIsExplicit() async throws {
        let error = await #expect(throws: LDAPError.self) {
            _ = try await LDAPConnection.connect(LDAPConfiguration(urls: ["ldaps://127.0.0.1:636"], security: .plaintext))
        }
        #expect(error?.operation == .configure)
        #expect(LDAPConfiguration(urls: ["ldap://x"]).security == .tls(.init()))
    }

    @Test("StartTLS and ldaps:// verify the server against the configured CA")
    func tlsTrusted() async throws {
        let suffix = "dc=tls,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.people(300, suffix: suffix), tls: true)
        defer { server.shutdown() }
        let certificates = try #require(server.certificates)
        for url in [server.url, try #require(server.ldapsURL)] {
            let configuration = LDAPConfiguration(
                urls: [url], security: .tls(.init(caFile: certificates.caCertificate)),
                credentials: .simple(bindDN: server.adminDN, passwordFile: server.adminPasswordFile))
            let connection = try await LDAPConnection.connect(configuration)
            #expect(try await connection.read(suffix) != nil)
            // Read ahead under TLS: every entry of a paged search arrives whole.
            #expect(await connection.readsAhead)
            let people = try await connection.search(base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)",
                                                     attributes: ["uid", "mail"], pageSize: 64).collect()
            #expect(people.count == 300)
            #expect(people.allSatisfy { $0.string("mail") == "\($0.string("uid") ?? "")@clinic.example" })
            await connection.close()
        }
    }

    @Test("A server certificate from an untrusted CA is refused")
    func tlsUntrusted() async throws {
        let suffix = "dc=untrusted,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix), tls: true)
        defer { server.shutdown() }
        let certificates = try #require(server.certificates)
        for url in [server.url, try #require(server.ldapsURL)] {
            let configuration = LDAPConfiguration(urls: [url], security: .tls(.init(caFile: certificates.otherCACertificate)),
                                                  credentials: .simple(bindDN: server.adminDN, passwordFile: server.adminPasswordFile))
            let error = await #expect(throws: LDAPError.self) { _ = try await LDAPConnection.connect(configuration) }
            #expect(error?.operation == (url.hasPrefix("ldaps") ? .connect : .startTLS))
        }
    }

    @Test("SASL EXTERNAL binds with a TLS client certificate")
    func saslExternal() async throws {
        let suffix = "dc=external,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix), tls: true,
                                                 extraConfiguration: "")
        defer { server.shutdown() }
        let certificates = try #require(server.certificates)
        let configuration = LDAPConfiguration(
            urls: [server.url],
            security: .tls(.init(caFile: certificates.caCertificate, certificateFile: certificates.clientCertificate,
                                 keyFile: certificates.clientKey)),
            credentials: .saslExternal)
        let connection = try await LDAPConnection.connect(configuration)
        #expect(try await connection.whoAmI().lowercased() == "dn:cn=roster-client,ou=tls")
        await connection.close()
    }
}
