extension ClinicDirectory {
    /// The same mapping as `configuration(...)`, as the roster.yaml IT would write.
    public func yaml(url: String, passwordFile: String, bindDN: String, mirrorPath: String, httpPort: Int = 8471) -> String {
        var text = """
        directory:
          name: main
          urls: [\(url)]
          flavor: openldap
          tls: {mode: plaintext}
          allow_plaintext: true
          bind: {method: simple, dn: '\(bindDN)', password_file: '\(passwordFile)'}
          base_dn: '\(suffix)'
        users:
          base: 'ou=people,\(suffix)'
          filter: (objectClass=inetOrgPerson)
          attributes: {user_code: uid, health_centers: departmentNumber}
          default_health_centers: [HC1]
          super_administrator_groups: ['\(groupDN("roster-superadmins"))']
          break_glass_user_codes: [\(Self.breakGlass)]
        providers:
          filter: (employeeType=provider)
          own_group:
            modules:
              providers_office: {privacy: toggle_default_off, privilege: full_access}
        health_centers:

        """
        for c in 1...healthCenters {
            text += """
              - id: HC\(c)
                name: Health Center \(c)
                care_venues:
                  - {id: HC\(c)-OR1, name: Operating Room 1}
                  - {id: HC\(c)-OR2, name: Operating Room 2}
                  - {id: HC\(c)-CLINIC, name: Clinic}

            """
        }
        text += "pools:\n"
        for c in 1...healthCenters {
            text += """
              - {id: HC\(c)-ORTHO, name: HC\(c) Orthopaedics, health_center: HC\(c), visibility: all_providers, providers_group: '\(groupDN("hc\(c)-ortho-pool"))'}

            """
        }
        text += """
        groups:
          base: 'ou=groups,\(suffix)'
          filter: (objectClass=groupOfNames)
          mappings:

        """
        for c in 1...healthCenters {
            text += """
                - directory_group: '\(groupDN("hc\(c)-booking"))'
                  name: HC\(c) OR Booking
                  kind: provider
                  health_center: HC\(c)
                  care_venues: [HC\(c)-OR1, HC\(c)-OR2]
                  modules: {care_venue: {privacy: toggle_default_off, privilege: full_access}}
                  providers: all_in_health_center
                  auto_add_new_providers: true
                - directory_group: '\(groupDN("hc\(c)-screening"))'
                  name: HC\(c) Pre-Surgical Screening
                  kind: provider
                  health_center: HC\(c)
                  care_venues: [HC\(c)-OR1, HC\(c)-OR2]
                  modules: {pre_surgical_screening: {privacy: toggle_default_on, privilege: full_access}}
                  providers: all_in_health_center
                  auto_add_new_providers: true
                - directory_group: '\(groupDN("hc\(c)-registration"))'
                  name: HC\(c) Registration
                  kind: provider
                  health_center: HC\(c)
                  care_venues: [HC\(c)-CLINIC]
                  modules: {patient_registration: {privacy: forced_patient, privilege: full_access}}
                  providers: all_in_health_center
                - directory_group: '\(groupDN("hc\(c)-reporting"))'
                  name: HC\(c) Reporting
                  kind: pool
                  health_center: HC\(c)
                  care_venues: [HC\(c)-CLINIC]
                  modules: {reports: {privacy: toggle_default_off, privilege: read_only}}
                  providers: {pools: [HC\(c)-ORTHO]}

            """
        }
        text += """
          pattern_rules:
            - match: cn
              pattern: 'hc(?<hc>[0-9]+)-(?<office>office[0-9]+)-moa'
              template:
                name: 'HC{hc} {office} MOAs'
                kind: provider
                health_center: 'HC{hc}'
                care_venues: ['HC{hc}-CLINIC']
                modules:
                  providers_office: {privacy: toggle_default_off, privilege: full_access}
                  reports: {privacy: toggle_default_off, privilege: read_only}
                providers: {members_of: 'cn=hc{hc}-{office}-providers,ou=groups,\(suffix)'}
        roles:
          - {name: Medical Director, modules: {reports: full_access}, directory_group: '\(groupDN("hc1-reporting"))'}
        safety: {max_deactivations: 50, max_deactivation_percent: 5}
        schedule: {reconcile_interval_minutes: 15}
        mirror: {path: '\(mirrorPath)'}
        http: {address: 127.0.0.1, port: \(httpPort)}

        """
        return text
    }
}
