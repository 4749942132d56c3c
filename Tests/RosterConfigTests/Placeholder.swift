import RosterConfig
import Testing
