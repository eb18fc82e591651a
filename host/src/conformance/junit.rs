//! JUnit XML for CI systems, with `quick-junit`.

use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};

use super::Report;

/// The report as JUnit XML: one `<testsuite>` per suite, one `<testcase>` per vector.
pub fn to_xml(report: &Report) -> Result<String, String> {
    let mut junit = JReport::new(format!("checkallsslcerts policy test: {}", report.module));
    let mut names: Vec<&str> = report.cases.iter().map(|c| c.suite.as_str()).collect();
    names.dedup();
    for name in names {
        let mut suite = TestSuite::new(name);
        for case in report.cases.iter().filter(|c| c.suite == name) {
            let status = if case.passed() {
                TestCaseStatus::success()
            } else {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(case.failures.first().cloned().unwrap_or_default());
                status.set_description(case.failures.join("\n"));
                status
            };
            let mut test = TestCase::new(case.name.clone(), status);
            test.set_time(case.duration);
            if !case.description.is_empty() {
                test.set_classname(case.description.clone());
            }
            suite.add_test_case(test);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().map_err(|e| e.to_string())
}
