public enum LDAPKitPlaceholder {}
