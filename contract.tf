# The names shared by the pipelines, the event rules, the Lambdas and the local runtime: step
# names, pipeline parameters, the helper Lambdas' name suffixes, the SNS topic suffix. Spelled
# once, in contract.json; pipeline_scripts/contract.py reads the same file for Python.

locals {
  contract = jsondecode(file("${path.module}/contract.json"))
}
