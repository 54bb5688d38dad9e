"""The test suite: ``tests/taco`` mirrors the runtime package ``custom/taco``, ``tests/taco_tools`` the tooling
package ``custom/taco_tools``, and ``tests/bundles`` runs the bundles end to end.

Every test folder is a package, so pytest imports a test module by its full name from the repository root
(``tests.taco.evaluation.test_report``) and two folders may hold test modules of the same name.
"""
