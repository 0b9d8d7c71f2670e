// Runbooks: the deployment guide as Swift code, one file per guide section.
import StepKit
