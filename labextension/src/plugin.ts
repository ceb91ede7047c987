/**
 * The JupyterLab (and Notebook 7) plugins: livestack-nb's widget models and
 * views, registered with the ipywidgets manager under the module name the
 * Python side uses, and the Kitchen side panel (./kitchen).
 */
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import * as widgetExports from './index';
import { kitchenPlugin } from './kitchen';
import { MODULE_NAME, MODULE_VERSION } from './version';

const plugin = {
  id: 'livestack-nb:widgets',
  description: 'Live tables, plots, flow graphs, job panels and job timelines for livestack-nb.',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (_app: unknown, registry: IJupyterWidgetRegistry): void => {
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: widgetExports as any
    });
  }
};

export default [plugin, kitchenPlugin];
