import Testing
import SlapdHarness
