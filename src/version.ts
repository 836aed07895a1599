/** The release version; kept in step with package.json by the release process (checked by a unit test). */
export const WEFT_VERSION = '0.1.0';
