// The module name and version the Python side names in _model_module(_version).
// Kept equal to package.json (and the Python package) by a test.
export const MODULE_NAME = 'livestack-nb';
export const MODULE_VERSION = '0.1.0';
